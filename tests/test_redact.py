"""Redaction skips a pattern when the text lacks what the pattern needs; skipping must never change
the result. Checked against running every pattern on every text, over text built to be close to secrets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from baton.redact import _PATTERNS, redact

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
