"""Secret redaction applied to free text before it is stored.

Patterns are deliberately specific (known token shapes, `key=value` pairs whose key names a
secret, PEM blocks, bearer headers) so ordinary prose and code survive untouched.
"""

from __future__ import annotations

import re

MARK = "[REDACTED]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, whole block.
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), MARK),
    # Authorization headers.
    (re.compile(r"(?i)\b(authorization\s*:\s*(?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MARK),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{16,}"), r"\1" + MARK),
    # Well-known token shapes.
    (re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}"), MARK),  # OpenAI / Anthropic
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), MARK),  # GitHub
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), MARK),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MARK),  # AWS access key id
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), MARK),  # Slack
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), MARK),  # Google API key
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MARK),  # JWT
    # Credentials in URLs: scheme://user:password@host. The scheme's length is bounded: unbounded, a long
    # run like `a-b-c-...` made the scan quadratic (60 KB of it held the event loop for a minute).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://[^/\s:@]+:)[^@\s/]+(@)"), r"\1" + MARK + r"\2"),
    # key = value / key: value where the key names a secret, also as the end of a longer name
    # (DB_PASSWORD=, AWS_SECRET_ACCESS_KEY=, STRIPE_API_KEY=); `max_tokens=` is not one.
    (
        re.compile(
            r"(?i)(?:\b|(?<=[_-]))((?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?(?:token|key)|auth[_-]?token"
            r"|refresh[_-]?token|client[_-]?secret|password|passwd|pwd|private[_-]?key|token)[\"']?\s*[:=]\s*[\"']?)"
            r"(?!\[REDACTED\])[^\s\"',;]{4,}"
        ),
        r"\1" + MARK,
    ),
)


def redact(text: str) -> tuple[str, bool]:
    """Return the text with secrets replaced, and whether anything was replaced."""
    changed = False
    for pattern, replacement in _PATTERNS:
        text, count = pattern.subn(replacement, text)
        changed = changed or count > 0
    return text, changed
