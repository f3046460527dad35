"""Redaction and error normalisation stay linear on text built to make a regex backtrack (issue 14).

Each case is the worst input found for one pattern: many starts that each scan a long run and then
fail. Quadratic, 400 KB of such text took 6-28 s and 20 KB of an error message 4-14 s; linear, each
takes milliseconds, so the bounds below are generous. The same cases, at doubling sizes, are timed
by `bench/linear_text.py`. A real server keeps answering other calls while it redacts 5 MB."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult

from baton.redact import redact
from baton.tools._common import MAX_CONTENT_CHARS
from baton.tools.learning import normalise_error
from tests.helpers import serve_command


def _repeat(unit: str, tail: str = "") -> Callable[[int], str]:
    """`unit` repeated to n characters (then `tail`)."""
    return lambda n: (unit * (n // len(unit) + 1))[: n - len(tail)] + tail


def _run(head: str, char: str, tail: str = "") -> Callable[[int], str]:
    """`head`, a run of `char`, `tail`: n characters."""
    return lambda n: head + char * (n - len(head) - len(tail)) + tail


# name -> n -> a text of n characters that is slowest for one pattern (the two come first).
REDACTION_CASES: dict[str, Callable[[int], str]] = {
    "pem: BEGIN headers, no END": _repeat("-----BEGIN PRIVATE KEY-----"),
    "jwt: eyJ starts in one run": _repeat("eyJa-"),
    "pem: header run": _run("-----BEGIN ", "A"),
    "pem: END decoys": _repeat("-----END ", "-----BEGIN PRIVATE KEY-----"),
    "jwt: first segments, no second": _repeat("eyJaaaaaaaa."),
    "jwt: short runs": _repeat("eyJ "),
    "authorization: spaces": _run("authorization:", " "),
    "authorization: repeated": _repeat("authorization: bearer "),
    "bearer: spaces, short token": _run("bearer", "\t", "x"),
    "bearer: short tokens": _repeat("bearer " + "a" * 15 + " "),
    "sk: repeated": _repeat("sk-"),
    "sk: short tokens": _repeat("sk-ant-" + "a" * 15 + " "),
    "github: short tokens": _repeat("ghp_" + "a" * 19 + " "),
    "github_pat: short tokens": _repeat("github_pat_" + "a" * 19 + " "),
    "aws: repeated": _repeat("AKIA"),
    "aws: short ids": _repeat("AKIA" + "A" * 15 + " "),
    "slack: repeated": _repeat("xoxb-"),
    "google: repeated": _repeat("AIza-"),
    "url: user, no @": _run("a://", "x", " @"),
    "url: password colons, no @": lambda n: "a://" + "x:" * ((n - 6) // 2) + "/@",
    "url: scheme run": _repeat("a-", "://u:p/@"),
    "url: schemes 31 long": _repeat("-" + "a" * 31 + "://", "@"),
    "url: schemes cut short": _repeat("a-" * 15 + "!a://", "@"),
    "url: repeated": _repeat("a://b:", "@"),
    "key=value: spaces before =": _run("password", " ", "="),
    "key=value: spaces after =": _run("password=", " ", "ab"),
    "key=value: names after _": _repeat("_pwd", "="),
    "key=value: names, no separator": _repeat("token ", "="),
    "key=value: already redacted": _repeat("pwd=[REDACTED] "),
    "prose with every needle": _repeat(
        "Deploy log: see https://example.com/a?b=c, token: none yet, bearer auth off, eyJ.eyJ AKIA sk- "
        "ghp_ github_pat_ xoxb- AIza authorization -----BEGIN x @ line 3 /usr/lib/x.py\n"
    ),
}

ERROR_MESSAGE_CHARS = 20_000  # the cap on error_message in every learning tool
NORMALISER_CASES: dict[str, Callable[[int], str]] = {
    "path: backslashes": _run("", "\\"),
    "path: slashes": _run("", "/"),
    "path: letters": _run("", "a"),
    "path: segments ending in /": _repeat("a/", "/"),
    "path: drive then backslashes": _run("C:", "\\"),
    "line: spaces, no number": _run("line", " ", "x"),
    "colon numbers: digits then a letter": _run(":", "1", "x"),
    "quotes: unclosed": _run('"', "x"),
    "quotes: mixed": _repeat("'\"`"),
    "hex: digits then a letter": _run("0x", "f", "g"),
    "ordinary traceback": _repeat('File "/home/a/app/models.py", line 42, in save\n KeyError: \'id\' at 0x7ffe12\n'),
}

BOUND_SECONDS = 2.0


def _seconds(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


@pytest.mark.parametrize("name", REDACTION_CASES)
def test_redaction_of_adversarial_text_is_fast(name: str) -> None:
    """400 KB built to make one redaction pattern backtrack is redacted well within the bound."""
    text = REDACTION_CASES[name](400_000)
    assert _seconds(lambda: redact(text)) < BOUND_SECONDS


@pytest.mark.parametrize("name", NORMALISER_CASES)
def test_normalising_an_adversarial_error_is_fast(name: str) -> None:
    """An error message at its cap built to make the normaliser backtrack is normalised within the bound."""
    message = NORMALISER_CASES[name](ERROR_MESSAGE_CHARS)
    assert _seconds(lambda: normalise_error(message)) < BOUND_SECONDS


# The normaliser's original expressions (quadratic, fine on short text): what every stored error
# signature was computed with, so the linear ones must give the same result on every message.
_ORIGINAL_STEPS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str]] = [
    (re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|`[^`\n]*`"), "<value>"),
    (re.compile(r"(?:[A-Za-z]:)?(?:[\w.@~-]*[\\/])+[\w.@~-]+"), "<path>"),
    (re.compile(r"(?i)\b(line|ln|row|col(?:umn)?)\s*[:#]?\s*\d+"), lambda m: f"{m.group(1).lower()} <n>"),
    (re.compile(r":\d+(?::\d+)?\b"), ":<n>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\s+"), " "),
]


def _original_normalise(message: str) -> str:
    for pattern, replacement in _ORIGINAL_STEPS:
        message = pattern.sub(replacement, message)
    return message.strip()


ERROR_PIECES = ["a", "Z", "C:", "c:", ":", "\\", "/", ".", "@", "~", "-", "_", " ", "\n", "\t", "é", "1", "42",
                "0x1f", "0xZ", "line", "Line", "col", "column", "ln", "row", "#", ":3", ":3:4", '"', "'", "`",
                "x.py", "/usr/", "\u0130", "\u017f", "\u00b2", "\u0663", "File \"/a/b.py\", line 4"]
errors = st.lists(st.one_of(st.sampled_from(ERROR_PIECES), st.text(max_size=3)), max_size=40).map("".join)


@settings(max_examples=1500, deadline=None)
@given(errors)
def test_normalised_errors_are_unchanged(message: str) -> None:
    """Every message normalises as before, so existing patterns keep matching their signature."""
    assert normalise_error(message) == _original_normalise(message)


def _content(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


async def test_a_server_answers_other_calls_while_it_redacts_the_largest_content(db_path: Path) -> None:
    """While `baton serve` redacts 5 MB built to be slow, a health call is answered within the bound
    (the old expressions took hours on it, with the server deaf), and the content is stored."""
    content = REDACTION_CASES["pem: BEGIN headers, no END"](MAX_CONTENT_CHARS // 2)
    content += REDACTION_CASES["key=value: names after _"](MAX_CONTENT_CHARS - len(content))
    command, *args = serve_command(db_path, "--tools", "all")
    params = StdioServerParameters(command=command, args=args, env={"PYTHONPATH": ""})
    with (db_path.parent / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            with anyio.fail_after(30):
                _content(await client.call_tool("create-session", {"session_id": "s", "requirements": "r",
                                                                   "project": "p"}))
            logged: dict[str, Any] = {}
            answered_meanwhile = 0

            async def log() -> None:
                with anyio.fail_after(120):
                    logged.update(_content(await client.call_tool(
                        "log-interaction", {"session_id": "s", "agent_type": "developer", "content": content})))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(log)
                while not logged:
                    with anyio.fail_after(BOUND_SECONDS * 5):
                        _content(await client.call_tool("health", {}))
                    answered_meanwhile += not logged
            assert logged["content_length"] == len(content) and answered_meanwhile >= 1

            # The error messages, each answered within 10 s (one never was).
            for tool, arguments in [
                ("save-error-pattern", {"session_id": "s", "error_message": "\\" * ERROR_MESSAGE_CHARS}),
                ("update-error-confidence", {"session_id": "s", "error_message": "\\" * ERROR_MESSAGE_CHARS,
                                             "outcome": "success"}),
                ("get-error-patterns", {"session_id": "s", "error_message": "/" * ERROR_MESSAGE_CHARS}),
            ]:
                with anyio.fail_after(10):
                    _content(await client.call_tool(tool, arguments))
