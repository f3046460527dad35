"""The stdio wire of a real `baton serve`: hostile lines always get an answer (or, for a notification,
nothing) and the server keeps serving; SIGINT, SIGTERM and EOF end it promptly, cleanly, with nothing
half-written."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY

from tests.helpers import cli_env, serve_command

ANSWER_BOUND = 10  # seconds: a hang, not a slow answer
EXIT_BOUND = 5
MODERN = "2026-07-28"
ERAS = ("2025-06-18", "2025-11-25", MODERN)  # two handshake versions, and the per-request envelope


class Wire:
    """`baton serve` spoken to in raw newline-delimited JSON-RPC; every stdout line is kept."""

    def __init__(self, process: Process, era: str) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.era = era
        self.stdout = BufferedByteReceiveStream(process.stdout)
        self.lines: list[bytes] = []

    async def send_line(self, line: bytes | str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send((line.encode() if isinstance(line, str) else line) + b"\n")

    async def next_message(self) -> dict[str, Any]:
        line = await self.stdout.receive_until(b"\n", 100_000_000)
        self.lines.append(line)
        message: dict[str, Any] = json.loads(line)
        return message

    async def answer(self, request_id: Any) -> dict[str, Any]:
        """The next message answering `request_id` (None: an error that could not name its request)."""
        while True:
            message = await self.next_message()
            if "method" not in message and message.get("id") == request_id:
                return message

    def request(self, request_id: str, method: str, members: str = "") -> str:
        """A request line whose params are the raw JSON `members` (so hostile text goes on the wire as is),
        after the per-request envelope in the modern era."""
        if self.era == MODERN:
            meta = {PROTOCOL_VERSION_META_KEY: MODERN, CLIENT_CAPABILITIES_META_KEY: {},
                    CLIENT_INFO_META_KEY: {"name": "wire", "version": "0"}}
            members = ", ".join(filter(None, [f'"_meta": {json.dumps(meta)}', members]))
        return f'{{"jsonrpc": "2.0", "id": {request_id}, "method": "{method}", "params": {{{members}}}}}'

    def tool_call(self, request_id: str, tool: str, arguments: str) -> str:
        return self.request(request_id, "tools/call", f'"name": "{tool}", "arguments": {arguments}')

    async def call(self, request_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        await self.send_line(self.tool_call(str(request_id), tool, json.dumps(arguments)))
        with anyio.fail_after(ANSWER_BOUND):
            return await self.answer(request_id)

    async def open(self) -> None:
        if self.era == MODERN:
            return  # no handshake: every request carries its own envelope
        await self.send_line(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": self.era, "capabilities": {}, "clientInfo": {"name": "wire", "version": "0"}}}))
        with anyio.fail_after(60):
            init = await self.answer(0)
        assert init["result"]["protocolVersion"] == self.era, init
        await self.send_line('{"jsonrpc": "2.0", "method": "notifications/initialized"}')


@asynccontextmanager
async def serving(db_path: Path, stderr: Path, era: str = "2025-06-18") -> AsyncIterator[Wire]:
    with stderr.open("wb") as errors:
        process = await anyio.open_process(serve_command(db_path), env=cli_env(db_path), stderr=errors)
        try:
            wire = Wire(process, era)
            await wire.open()
            yield wire
        finally:
            if process.returncode is None:
                process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
            await process.aclose()


def _nested(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


def _hostile_requests(wire: Wire) -> list[tuple[str, bytes | str, Any, int | str]]:
    """(case, line, id the answer must carry, JSON-RPC error code or "invalid" for the tool's own error)."""
    call = wire.tool_call
    return [
        ("lone surrogate in an argument", call("1", "create-session", r'{"session_id": "\ud800", "requirements": "r"}'),
         1, "invalid"),
        ("invalid UTF-8 in an argument", call("2", "create-session", '{"session_id": "s", "requirements": "r"}')
         .encode().replace(b'"s"', b'"\xff\xfe"'), 2, "invalid"),
        ("JSON nested 300 deep in an argument",
         call("3", "save-state", '{"session_id": "s", "state_type": "pm", "state": ' + _nested(300) + "}"),
         3, "invalid"),
        ("a 5,000-digit integer in an argument",
         call("4", "create-session", '{"session_id": "s", "requirements": "r", "iteration": ' + "7" * 5000 + "}"),
         4, -32602),
        ("params is a list", '{"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": []}', 5, -32602),
        ("params is a string", '{"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": "x"}', 6, -32602),
        ("tool arguments are a list", call("7", "health", "[1, 2]"), 7, -32602),
        ("invalid JSON", '{"jsonrpc": "2.0", "id": 8, "method": ', None, -32700),
        ("invalid UTF-8 outside a string", b'{"jsonrpc": "2.0", "id": 9, \xff}', None, -32700),
        ("jsonrpc 1.0", '{"jsonrpc": "1.0", "id": 10, "method": "tools/list"}', 10, -32600),
        ("no jsonrpc member", '{"id": 11, "method": "tools/list"}', 11, -32600),
        ("a batch", "[" + wire.request("12", "tools/list") + "]", 12, -32600),
        ("an empty batch", "[]", None, -32600),
        ("not an object", "42", None, -32600),
        ("method is not a string", '{"jsonrpc": "2.0", "id": 15, "method": 15}', 15, -32600),
        ("id is a float", '{"jsonrpc": "2.0", "id": 1.5, "method": "tools/list"}', None, -32600),
        ("id is a 5,000-digit integer", '{"jsonrpc": "2.0", "id": ' + "7" * 5000 + ', "method": "tools/list"}',
         None, -32600),
        ("JSON nested 5,000 deep", wire.request("18", "tools/list", '"deep": ' + _nested(5000)), 18, -32600),
        ("lone surrogate as the id", call(r'"\udc80"', "health", "{}"), "\udc80", "answered"),
        ("lone surrogate as the tool name", call("20", r"\ud800", "{}"), 20, "answered"),
    ]


MALFORMED_NOTIFICATIONS = [
    '{"jsonrpc": "2.0", "method": "notifications/initialized", "params": []}',
    '{"jsonrpc": "1.0", "method": "notifications/initialized"}',
    '{"jsonrpc": "2.0", "method": "notifications/x", "params": {"n": ' + "7" * 5000 + "}}",
    r'{"jsonrpc": "2.0", "method": "notifications/\ud800"}',
    '{"jsonrpc": "2.0", "method": "notifications/x", "params": ' + _nested(5000) + "}",
    '{"jsonrpc": "2.0", "id": 999, "result": {}}',  # a response to a request the server never sent
    '{"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "x"}}',
    "",
    "   ",
]


def _outcome(message: dict[str, Any], expected: int | str) -> str | None:
    """None if the answer is the expected one, else what was wrong with it."""
    if expected == "answered":
        return None if "result" in message or "error" in message else f"neither result nor error: {message}"
    if expected == "invalid":
        result = message.get("result") or {}
        text = (result.get("content") or [{}])[0].get("text", "")
        return None if result.get("isError") and ": invalid: " in text else f"not an invalid tool error: {message}"
    code = (message.get("error") or {}).get("code")
    return None if code == expected else f"error code {code}, expected {expected}: {str(message)[:300]}"


@pytest.mark.parametrize("era", ERAS)
async def test_every_hostile_request_gets_an_answer_and_the_server_keeps_serving(
        db_path: Path, tmp_path: Path, era: str) -> None:
    """Each hostile line is answered within the bound with its id and the right code; malformed
    notifications get nothing; afterwards a normal tool call still works; stdout is only JSON-RPC."""
    problems: dict[str, str] = {}
    async with serving(db_path, tmp_path / "stderr.log", era) as wire:
        for case, line, request_id, expected in _hostile_requests(wire):
            await wire.send_line(line)
            with anyio.move_on_after(ANSWER_BOUND):
                problem = _outcome(await wire.answer(request_id), expected)
                if problem:
                    problems[case] = problem
                continue
            problems[case] = f"no answer with id {request_id!r} within {ANSWER_BOUND} s"
        answered_before = len(wire.lines)
        for line in MALFORMED_NOTIFICATIONS:
            await wire.send_line(line)
        health = await wire.call(100, "health", {})
        assert len(wire.lines) == answered_before + 1, f"a notification was answered: {wire.lines[-2][:300]!r}"
        created = await wire.call(101, "create-session", {"session_id": "after", "requirements": "r"})
        await wire.process.stdin.aclose()  # type: ignore[union-attr]
        with anyio.fail_after(EXIT_BOUND):
            await wire.process.wait()
    assert not problems, json.dumps(problems, indent=1)
    assert "result" in health and not health["result"].get("isError"), health
    assert created["result"]["structuredContent"]["created"] is True, created
    for raw in wire.lines:
        message = json.loads(raw)
        assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", raw[:200]
    assert {json.loads(raw).get("id") for raw in wire.lines} >= {100, 101}
    assert wire.process.returncode == 0
    assert "Traceback" not in (tmp_path / "stderr.log").read_text()


def _logged_contents(db_path: Path) -> set[str]:
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {row[0] for row in conn.execute("SELECT content FROM logs")}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_with_stdin_open_ends_the_server_cleanly(
        db_path: Path, tmp_path: Path, signum: signal.Signals) -> None:
    """SIGINT or SIGTERM while the client keeps stdin open: exit 0 within the bound, no traceback, the
    acknowledged write kept."""
    stderr = tmp_path / "stderr.log"
    async with serving(db_path, stderr) as wire:
        ok = await wire.call(1, "create-session", {"session_id": "s", "requirements": "r"})
        assert ok["result"]["structuredContent"]["created"] is True
        await wire.call(2, "log-interaction", {"session_id": "s", "agent_type": "developer", "content": "kept"})
        wire.process.send_signal(signum)
        with anyio.fail_after(EXIT_BOUND):
            await wire.process.wait()
    assert wire.process.returncode == 0, stderr.read_text()
    assert "Traceback" not in stderr.read_text()
    assert _logged_contents(db_path) == {"kept"}


async def test_sigint_after_stdin_closed_ends_the_server_without_a_traceback(db_path: Path, tmp_path: Path) -> None:
    """The client closes stdin and sends SIGINT at once, as clients do on shutdown: a clean exit 0."""
    stderr = tmp_path / "stderr.log"
    async with serving(db_path, stderr) as wire:
        await wire.call(1, "create-session", {"session_id": "s", "requirements": "r"})
        await wire.process.stdin.aclose()  # type: ignore[union-attr]
        wire.process.send_signal(signal.SIGINT)
        with anyio.fail_after(EXIT_BOUND):
            await wire.process.wait()
    assert wire.process.returncode == 0, stderr.read_text()
    assert "Traceback" not in stderr.read_text()


async def test_eof_on_stdin_ends_the_server_cleanly(db_path: Path, tmp_path: Path) -> None:
    """Closing stdin is a normal end: exit 0 within the bound, no traceback."""
    stderr = tmp_path / "stderr.log"
    async with serving(db_path, stderr) as wire:
        await wire.call(1, "health", {})
        await wire.process.stdin.aclose()  # type: ignore[union-attr]
        with anyio.fail_after(EXIT_BOUND):
            await wire.process.wait()
    assert wire.process.returncode == 0 and "Traceback" not in stderr.read_text()


def test_requests_piped_then_stdin_closed_are_all_answered(db_path: Path) -> None:
    """`baton serve < requests` (EOF right behind the requests): every request gets its real answer, not
    "Connection closed", then exit 0."""
    lines = [{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "pipe", "version": "0"}}},
             {"jsonrpc": "2.0", "method": "notifications/initialized"},
             {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                 "name": "create-session", "arguments": {"session_id": "s", "requirements": "r"}}}]
    lines += [{"jsonrpc": "2.0", "id": 10 + index, "method": "tools/call", "params": {
        "name": "log-interaction", "arguments": {"session_id": "s", "agent_type": "qa_expert", "content": f"m{index}"}}}
        for index in range(20)]
    proc = subprocess.run(serve_command(db_path), env=cli_env(db_path), input="\n".join(map(json.dumps, lines)),
                          capture_output=True, text=True, timeout=60, check=False)
    answers = {m["id"]: m for m in map(json.loads, proc.stdout.splitlines())}
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(answers) == [0, 1, *range(10, 30)]
    assert all("result" in m and not m["result"].get("isError") for m in answers.values()), proc.stdout[:2000]
    assert _logged_contents(db_path) == {f"m{index}" for index in range(20)}


def test_serve_started_with_stdin_closed_exits_cleanly(db_path: Path) -> None:
    """Started with fd 0 closed (`<&-`): a warning that there is nothing to serve and exit 0, not a traceback."""
    proc = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", *serve_command(db_path)], env=cli_env(db_path),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    assert "Traceback" not in proc.stderr and "stdin was closed" in proc.stderr


async def test_sigterm_mid_burst_keeps_every_acknowledged_write(db_path: Path, tmp_path: Path) -> None:
    """SIGTERM while 300 writes are in flight: a prompt clean exit, every request answered at most once,
    every acknowledged write in the database, and the database intact."""
    stderr = tmp_path / "stderr.log"
    burst = 300
    answers: dict[int, dict[str, Any]] = {}
    async with serving(db_path, stderr) as wire:
        await wire.call(1, "create-session", {"session_id": "s", "requirements": "r"})
        for index in range(burst):
            arguments = {"session_id": "s", "agent_type": "developer", "content": f"w{index}"}
            await wire.send_line(wire.tool_call(str(1000 + index), "log-interaction", json.dumps(arguments)))
        with anyio.fail_after(ANSWER_BOUND):
            while len(answers) < 10:  # some writes acknowledged, most still queued or in flight
                message = await wire.next_message()
                answers[message["id"]] = message
        wire.process.send_signal(signal.SIGTERM)
        with anyio.fail_after(EXIT_BOUND):
            try:
                while True:
                    message = await wire.next_message()
                    assert message["id"] not in answers, f"answered twice: {message}"
                    answers[message["id"]] = message
            except (anyio.EndOfStream, anyio.IncompleteRead):
                pass
            await wire.process.wait()
    assert wire.process.returncode == 0, stderr.read_text()
    assert "Traceback" not in stderr.read_text()
    acknowledged = {f"w{rid - 1000}" for rid, m in answers.items()
                    if "result" in m and not m["result"].get("isError")}
    assert len(acknowledged) >= 10
    stored = _logged_contents(db_path)
    assert acknowledged <= stored, f"acknowledged but lost: {sorted(acknowledged - stored)[:10]}"
    assert stored <= {f"w{index}" for index in range(burst)}
