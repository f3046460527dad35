"""Secret redaction applied to free text before it is stored.

Patterns are deliberately specific (known token shapes, `key=value` pairs whose key names a
secret, PEM blocks, bearer headers) so ordinary prose and code survive untouched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

import anyio

MARK = "[REDACTED]"

# Every pattern is linear in the text and fast on prose (tests/test_adversarial_text.py; timings per
# pattern and input in bench/linear_text.py). What that takes, with `re`:
# - A failed match is retried at each later position, so no pattern may scan a long run again from
#   each of its characters: a quantifier followed by a character it cannot match is possessive (`*+`:
#   the same matches, no backtracking); the JWT and PEM scans below handle the starts a regex would retry.
# - `re` jumps straight to a pattern's literal first characters (or a case-sensitive first character
#   set), but tries every position when the pattern starts with `\b`, a lookbehind or a case-insensitive
#   letter: 5 MB took 100-500 ms per pattern. So `\bword` is written `word(?<!\wword)` (the same test
#   made after the word), and case-insensitive patterns start with their first letter's variants,
#   case-sensitively (`(?-i:[Bb])`; `(?i)s` also matches U+017F: tests/test_redact.py lists them).


class _Substitution(Protocol):
    def subn(self, repl: str, string: str) -> tuple[str, int]: ...


class _PemBlocks:
    """`-----BEGIN ... PRIVATE KEY-----` through the first `-----END ... PRIVATE KEY-----` after it, as
    `BEGIN.*?END` would match, in one pass: that regex scans from every BEGIN to the end of a text with
    no END (400 KB of BEGINs held the server for 27 s). No END after one BEGIN means none after a later one."""

    _BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
    _END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")

    def subn(self, repl: str, string: str) -> tuple[str, int]:
        parts: list[str] = []
        done = 0
        while (begin := self._BEGIN.search(string, done)) and (end := self._END.search(string, begin.end())):
            parts += (string[done : begin.start()], repl)
            done = end.end()
        if not parts:
            return string, 0
        parts.append(string[done:])
        return "".join(parts), len(parts) // 2


class _Jwts:
    r"""`\beyJ<8+>.eyJ<8+>.<8+>`, segments of [A-Za-z0-9_-]. `eyJ` can start many times in one run
    (`eyJa-eyJa-...`: 6 s for 200 KB as one regex), and every start in a run fails or succeeds with the
    first: the run's end and what follows are the same. So the first start consumes the run, and a run
    that is no token is put back unchanged."""

    _TOKEN = re.compile(r"eyJ(?<!\weyJ)[A-Za-z0-9_-]{8,}+(\.eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,})?")

    def subn(self, repl: str, string: str) -> tuple[str, int]:
        count = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal count
            if match.group(1) is None:
                return match.group(0)
            count += 1
            return repl

        return self._TOKEN.sub(replace, string), count


def _url_scheme_before() -> str:
    r"""A lookbehind-only test, at `://`, for `\b[a-z][a-z0-9+.-]{0,30}` ending there, one character at a
    time: from each start a forward scan costs up to 31 steps per character (`a-a-a-...`)."""
    scheme_char = "[a-z0-9+.-]"
    test = r"(?<=\b[a-z])"
    for _ in range(30):
        test = rf"(?:(?<=\b[a-z])|(?<={scheme_char})(?<={test}.))"
    return test


# Each pattern with what it cannot match without: for every tuple of needles, one of them must
# occur in the lower-cased text. Checking needles with `in` costs well under a microsecond; running
# the twelve expressions over an ordinary 200-character log entry cost ~60 us, most of a batch's
# per-entry time. A test checks that skipping never changes the result.
_KEY_NAMES = ("key", "secret", "token", "passw", "pwd")
_PATTERNS: tuple[tuple[_Substitution, str, tuple[tuple[str, ...], ...]], ...] = (
    # PEM private keys, whole block.
    (_PemBlocks(), MARK, (("-----begin",),)),
    # Authorization headers.
    (re.compile(r"(?i)((?-i:[Aa])(?<!\w.)uthorization\s*+:\s*+(?:bearer|basic|token)\s++)[A-Za-z0-9._~+/=-]{8,}"),
     r"\1" + MARK, (("authorization",),)),
    (re.compile(r"(?i)((?-i:[Bb])(?<!\w.)earer\s++)[A-Za-z0-9._~+/=-]{16,}"), r"\1" + MARK, (("bearer",),)),
    # Well-known token shapes.
    (re.compile(r"sk-(?<!\wsk-)(?:ant-|proj-)?[A-Za-z0-9_-]{16,}"), MARK, (("sk-",),)),  # OpenAI / Anthropic
    (re.compile(r"gh(?<!\wgh)[pousr]_[A-Za-z0-9]{20,}"), MARK, (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),)),  # GitHub
    (re.compile(r"github_pat_(?<!\wgithub_pat_)[A-Za-z0-9_]{20,}"), MARK, (("github_pat_",),)),
    (re.compile(r"A[KS]IA(?<!\wA[KS]IA)[0-9A-Z]{16}\b"), MARK, (("akia", "asia"),)),  # AWS access key id
    (re.compile(r"xox(?<!\wxox)[abprs]-[A-Za-z0-9-]{10,}"), MARK, (("xox",),)),  # Slack
    (re.compile(r"AIza(?<!\wAIza)[0-9A-Za-z_-]{35}\b"), MARK, (("aiza",),)),  # Google API key
    (_Jwts(), MARK, (("eyj",),)),
    # Credentials in URLs: scheme://user:password@host, the scheme at most 31 characters (unbounded, a run
    # like `a-b-c-...` made the scan quadratic: 60 KB of it held the event loop for a minute). Found from `://`.
    (re.compile(rf"(?i)(://(?<={_url_scheme_before()}://)[^/\s:@]++:)[^@\s/]++(@)"), r"\1" + MARK + r"\2",
     (("://",), ("@",))),
    # key = value / key: value where the key names a secret, also as the end of a longer name
    # (DB_PASSWORD=, AWS_SECRET_ACCESS_KEY=, STRIPE_API_KEY=); `max_tokens=` is not one. The name starts
    # where `\b|(?<=[_-])` holds: not after a letter or digit (`(?<![^\W_])`); after its first letter,
    # matched case-sensitively, `(?<=a)` picks the names that start with it.
    (
        re.compile(
            r"(?i)((?-i:[AaCcPpRrSsTt\u017f])(?<![^\W_].)"
            r"(?:(?<=a)(?:pi[_-]?key|ccess[_-]?(?:token|key)|uth[_-]?token)|(?<=s)ecret(?:[_-]?key)?"
            r"|(?<=r)efresh[_-]?token|(?<=c)lient[_-]?secret|(?<=p)(?:ass(?:word|wd)|wd|rivate[_-]?key)|(?<=t)oken)"
            r"[\"']?+\s*+[:=]\s*+[\"']?+)(?!\[REDACTED\])[^\s\"',;]{4,}"
        ),
        r"\1" + MARK,
        (_KEY_NAMES, (":", "=")),
    ),
)


# The only non-ASCII characters that a case-insensitive `re` matches to an ASCII letter (İ ı K ſ):
# mapped before lower-casing, so a needle is found wherever a pattern could match.
_ASCII_FOLD = (("\u0130", "i"), ("\u0131", "i"), ("\u212a", "k"), ("\u017f", "s"))


def _folded(text: str) -> str:
    if not text.isascii():  # str.translate costs ~80 ns a character on non-ASCII text; replace ~1
        for char, letter in _ASCII_FOLD:
            if char in text:
                text = text.replace(char, letter)
    return text.lower()


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


# Redaction costs 10-80 ns a character (bench/linear_text.py): past this, a worker thread does it, so
# other calls of the server are answered meanwhile; below, the thread hop would cost more than it saves.
OFF_LOOP_CHARS = 50_000


async def redact_all(texts: Sequence[str]) -> list[tuple[str, bool]]:
    """redact() of each text, in a worker thread when they are long. `re` holds the GIL for one
    pattern's pass over one text (up to ~0.3 s for 5 MB built to be slow), so the loop waits at most that."""
    if sum(map(len, texts)) < OFF_LOOP_CHARS:
        return [redact(text) for text in texts]
    return await anyio.to_thread.run_sync(lambda: [redact(text) for text in texts])
