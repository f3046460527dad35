"""Redaction skips a pattern when the text lacks what the pattern needs; skipping must never change
the result. Checked against running every pattern on every text, over text built to be close to secrets.
The patterns were rewritten to be linear (issue 14); they redact exactly as the original ones did."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from baton.redact import _ASCII_FOLD, _PATTERNS, MARK, redact
from baton.store import Store
from tests.helpers import call

# Pieces that make up secrets, and the characters a case-insensitive pattern folds to ASCII.
FRAGMENTS = [
    "password", "PassWd", "pwd", "token", "api_key", "API-KEY", "secret", "client_secret", "private_key",
    "auth_token", "DB_PASSWORD", "authorization", "Authorization: Bearer ", "bearer ", "basic ", "sk-", "sk-ant-",
    "ghp_", "gho_", "github_pat_", "AKIA", "ASIA", "xoxb-", "AIza", "eyJ", ".eyJ", "://", "https://", "@", ":",
    "=", " = ", "'", '"', "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "[REDACTED]",
    "\u0130", "\u0131", "\u212a", "\u017f", "paſſword", "\u212aey", "authorızation", "ABCDEFGHIJKLMNOP",
    "abcdefghij0123456789", "_", "-", " ", "\n", ";", ",",
]
KEY_NAMES = ["api_key", "apikey", "api-key", "secret", "secret_key", "access_token", "access-key", "auth_token",
             "refresh_token", "client_secret", "password", "passwd", "pwd", "private_key", "token", "DB_PASSWORD",
             "STRIPE_API_KEY", "max_tokens", "paſſword", "\u212aey", "tok\u212aen"]
noise = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8))
# A secret-shaped assignment (name, separator, value) somewhere in noise, so every key name meets every separator.
assignment = st.tuples(st.sampled_from(KEY_NAMES), st.sampled_from([":", "=", " = ", '": "', "'='", " :"]),
                       st.text(alphabet="abcdefgh0123456789_-.", min_size=0, max_size=12)).map("".join)
texts = st.lists(st.one_of(noise, assignment), max_size=24).map("".join)


def _every_pattern(text: str) -> tuple[str, bool]:
    changed = False
    for pattern, replacement, _needles in _PATTERNS:
        text, count = pattern.subn(replacement, text)
        changed = changed or count > 0
    return text, changed


@settings(max_examples=3000, deadline=None)
@given(texts)
def test_skipping_patterns_never_changes_the_result(text: str) -> None:
    assert redact(text) == _every_pattern(text)


def test_case_folded_secrets_are_still_found() -> None:
    """Characters `re` matches case-insensitively to ASCII (long s, Kelvin sign, dotless i) do not hide a key."""
    for text in ("paſſword=hunter2hunter2", "api_\u212aey: abcdefgh", "authorızation: token abcdefgh12"):
        assert redact(text)[1] is True, text
        assert redact(text) == _every_pattern(text)


# The original expressions (the PEM and JWT ones quadratic: tests/test_adversarial_text.py), the
# reference for what is a secret: the linear ones must give the same text and count on every input.
ORIGINAL_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), MARK),
    (re.compile(r"(?i)\b(authorization\s*:\s*(?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MARK),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{16,}"), r"\1" + MARK),
    (re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}"), MARK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), MARK),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), MARK),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MARK),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), MARK),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), MARK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MARK),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://[^/\s:@]+:)[^@\s/]+(@)"), r"\1" + MARK + r"\2"),
    (re.compile(r"(?i)(?:\b|(?<=[_-]))((?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?(?:token|key)|auth[_-]?token"
                r"|refresh[_-]?token|client[_-]?secret|password|passwd|pwd|private[_-]?key|token)[\"']?\s*[:=]\s*[\"']?)"
                r"(?!\[REDACTED\])[^\s\"',;]{4,}"), r"\1" + MARK),
]
# Runs of the characters each pattern scans, with the pieces that start and end its matches.
RUN_PIECES = ["eyJ", ".eyJ", "eyJa-", "aaaaaaaa", "a-", "-", "_", ".", "+", "://", "a://", "@", ":", "x:", "/", "!",
              "sk-", "ant-", "AKIA", "AIza", "xoxb-", "ghp_", "github_pat_", "pwd", "_pwd", "password", "token", "=",
              " = ", "\t", " ", "'", '"', "[REDACTED]", "Bearer ", "authorization: ", "basic ", "-----BEGIN ",
              "-----END ", "RSA ", "PRIVATE KEY-----", "A", "0", "é", "\u017f", "\u212a", "\u0131", "\n", ",", ";"]
runs = st.lists(st.sampled_from(RUN_PIECES), max_size=40).map("".join)


def _every_original_pattern(text: str) -> tuple[str, bool]:
    changed = False
    for pattern, replacement in ORIGINAL_PATTERNS:
        text, count = pattern.subn(replacement, text)
        changed = changed or count > 0
    return text, changed


@settings(max_examples=2000, deadline=None)
@given(st.one_of(texts, runs))
def test_linear_patterns_redact_as_the_original_ones(text: str) -> None:
    """Each rewritten pattern replaces the same text as the original one, and redact() as all of them."""
    for (pattern, replacement, _), (original, original_replacement) in zip(_PATTERNS, ORIGINAL_PATTERNS, strict=True):
        assert pattern.subn(replacement, text) == original.subn(original_replacement, text), original.pattern
    assert redact(text) == _every_original_pattern(text)


def test_first_letters_written_case_sensitively_list_every_case_variant() -> None:
    """A case-insensitive pattern starts with its first letter's variants spelled out (so `re` can skip to
    them): they are exactly what `(?i)` matches, and the needle folding knows every non-ASCII one."""
    every_char = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    assert set(re.findall(r"(?i)a", every_char)) == {"a", "A"}
    assert set(re.findall(r"(?i)b", every_char)) == {"b", "B"}
    assert set(re.findall(r"(?i)[acprst]", every_char)) == set("AaCcPpRrSsTt\u017f")
    assert {c for c in re.findall(r"(?i)[a-z]", every_char) if not c.isascii()} == {c for c, _ in _ASCII_FOLD}


SECRET = "sk-ant-abcdefghijklmnopqrstuvwxyz0123"


async def test_every_free_text_field_is_redacted_before_storage(store: Store, db_path: Path) -> None:
    """Requirements, a criterion's actual and evidence, reasoning references and package summaries are
    free text like log content: a secret in them never reaches the file."""
    session = await call(store, "create-session", session_id="s", requirements=f"deploy with {SECRET}")
    assert SECRET not in session["requirements"] and MARK in session["requirements"]
    again = await call(store, "create-session", session_id="s", requirements=f"deploy with {SECRET}")
    assert again["created"] is False  # the retry still matches what was stored
    await call(store, "save-success-criteria", session_id="s", criteria=[{"criterion": "deploys"}])
    met = await call(store, "update-success-criterion", session_id="s", criterion="deploys", status="met",
                     actual=f"token={SECRET}", evidence=f"curl -H 'Authorization: Bearer {SECRET}'")
    assert SECRET not in met["actual"] + met["evidence"]
    reasoning = await call(store, "save-reasoning", session_id="s", agent_type="developer", phase="approach",
                           content="plain words", references=["notes.md", f"https://ci/?password={SECRET}"])
    assert reasoning["redacted"] is True
    package = await call(store, "save-context-package", session_id="s", package_type="research",
                         producer="developer", consumers=["qa_expert"], summary=f"key {SECRET}", content="ok")
    assert package["redacted"] is True
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
