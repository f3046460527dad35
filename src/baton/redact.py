"""Secret redaction applied to free text before it is stored.

Patterns are deliberately specific (known token shapes, `key=value` pairs whose key names a
secret, PEM blocks, bearer headers) so ordinary prose and code survive untouched.
"""

from __future__ import annotations

import re

MARK = "[REDACTED]"

# Each pattern with what it cannot match without: for every tuple of needles, one of them must
# occur in the lower-cased text. Checking needles with `in` costs well under a microsecond; running
# the twelve expressions over an ordinary 200-character log entry cost ~60 us, most of a batch's
# per-entry time. A test checks that skipping never changes the result.
_KEY_NAMES = ("key", "secret", "token", "passw", "pwd")
_PATTERNS: tuple[tuple[re.Pattern[str], str, tuple[tuple[str, ...], ...]], ...] = (
    # PEM private keys, whole block.
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), MARK,
     (("-----begin",),)),
    # Authorization headers.
    (re.compile(r"(?i)\b(authorization\s*:\s*(?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MARK,
     (("authorization",),)),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{16,}"), r"\1" + MARK, (("bearer",),)),
    # Well-known token shapes.
    (re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}"), MARK, (("sk-",),)),  # OpenAI / Anthropic
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), MARK, (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),)),  # GitHub
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), MARK, (("github_pat_",),)),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MARK, (("akia", "asia"),)),  # AWS access key id
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), MARK, (("xox",),)),  # Slack
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), MARK, (("aiza",),)),  # Google API key
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MARK, (("eyj",),)),  # JWT
    # Credentials in URLs: scheme://user:password@host. The scheme's length is bounded: unbounded, a long
    # run like `a-b-c-...` made the scan quadratic (60 KB of it held the event loop for a minute).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://[^/\s:@]+:)[^@\s/]+(@)"), r"\1" + MARK + r"\2",
     (("://",), ("@",))),
    # key = value / key: value where the key names a secret, also as the end of a longer name
    # (DB_PASSWORD=, AWS_SECRET_ACCESS_KEY=, STRIPE_API_KEY=); `max_tokens=` is not one.
    (
        re.compile(
            r"(?i)(?:\b|(?<=[_-]))((?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?(?:token|key)|auth[_-]?token"
            r"|refresh[_-]?token|client[_-]?secret|password|passwd|pwd|private[_-]?key|token)[\"']?\s*[:=]\s*[\"']?)"
            r"(?!\[REDACTED\])[^\s\"',;]{4,}"
        ),
        r"\1" + MARK,
        (_KEY_NAMES, (":", "=")),
    ),
)


# The only non-ASCII characters that a case-insensitive `re` matches to an ASCII letter (İ ı K ſ):
# mapped before lower-casing, so a needle is found wherever a pattern could match.
_ASCII_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u212a": "k", "\u017f": "s"})


def _folded(text: str) -> str:
    return text.translate(_ASCII_FOLD).lower()


_NEEDLES = tuple(sorted({needle for _, _, groups in _PATTERNS for group in groups for needle in group}))


def _needles_in(text: str) -> set[str]:
    lowered = _folded(text)
    return {needle for needle in _NEEDLES if needle in lowered}


def _may_match(needles: tuple[tuple[str, ...], ...], present: set[str]) -> bool:
    for group in needles:  # noqa: SIM110 (a generator in all() costs more than the test itself, per entry)
        if present.isdisjoint(group):
            return False
    return True


def redact(text: str) -> tuple[str, bool]:
    """Return the text with secrets replaced, and whether anything was replaced."""
    changed = False
    present = _needles_in(text)
    for pattern, replacement, needles in _PATTERNS:
        if not _may_match(needles, present):
            continue
        text, count = pattern.subn(replacement, text)
        if count:
            changed = True
            present = _needles_in(text)
    return text, changed
