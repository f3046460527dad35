"""stdout is the protocol: whatever `baton serve` does (debug logging, errors, warnings, hostile text,
large results, a refused start), every byte it writes on stdout is a JSON-RPC message."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream
from stress.coldstart import make_newer_database

from tests.helpers import cli_env, serve_command

HOSTILE = "line\u2028sep\u2029para \x00 nul \u202e rtl 👩‍💻 \"quotes\" \\ back {SESSION_ID}\n\r\t"


def _requests() -> list[dict[str, Any]]:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("create-session", {"session_id": "out-1", "requirements": HOSTILE * 10}),
        ("log-interaction", {"session_id": "out-1", "agent_type": "developer", "content": HOSTILE * 1000}),
        ("log-interaction", {"session_id": "{SESSION_ID}", "agent_type": "developer", "content": "x"}),
        ("get-session", {"session_id": "nope"}),
        ("update-task-group", {"session_id": "out-1", "group_id": "missing", "status": "merging"}),
        ("save-state", {"session_id": "out-1", "state_type": "pm", "state": "not an object"}),
        ("get-logs", {"session_id": "out-1", "max_chars": 20_000, "limit": 500}),
        ("dashboard-snapshot", {"session_id": "out-1", "log_limit": 100, "max_chars": 20_000}),
        ("no-such-tool", {}),
        ("health", {}),
    ]
    requests: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "stdout", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "no/such-method"},
    ]
    requests += [{"jsonrpc": "2.0", "id": 10 + index, "method": "tools/call",
                  "params": {"name": name, "arguments": arguments}} for index, (name, arguments) in enumerate(calls)]
    return requests


def _is_json_rpc(message: Any) -> bool:
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return False
    return "method" in message or ("id" in message and ("result" in message or "error" in message))


async def test_every_stdout_byte_is_json_rpc_under_debug_logging_and_hostile_calls(db_path: Path) -> None:
    """DEBUG logs, warnings forced on, errors of every kind, hostile unicode and large results: stdout holds
    only JSON-RPC messages, one per line, and every request got its answer."""
    requests = _requests()
    expected_ids = {r["id"] for r in requests if "id" in r}
    env = {**cli_env(db_path), "PYTHONWARNINGS": "always", "PYTHONDEVMODE": "1"}
    stdout = b""
    answered: set[Any] = set()
    with anyio.fail_after(120):
        async with await anyio.open_process(serve_command(db_path, "--tools", "all", "--log-level", "DEBUG"),
                                            env=env, stderr=subprocess.DEVNULL) as process:
            assert process.stdin is not None and process.stdout is not None
            reader = BufferedByteReceiveStream(process.stdout)
            first, *rest = requests
            await process.stdin.send(json.dumps(first).encode() + b"\n")
            line = await reader.receive_until(b"\n", 50_000_000)
            stdout += line + b"\n"
            answered.add(json.loads(line).get("id"))
            for request in rest:
                await process.stdin.send(json.dumps(request, ensure_ascii=False).encode() + b"\n")
            while answered < expected_ids:
                line = await reader.receive_until(b"\n", 50_000_000)
                stdout += line + b"\n"
                answered.add(json.loads(line).get("id"))
            await process.stdin.aclose()
            while True:
                try:
                    stdout += await reader.receive(65536)
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    break
            assert await process.wait() == 0
    lines = stdout.split(b"\n")
    assert lines[-1] == b"", "stdout does not end with a complete message"
    for raw in lines[:-1]:
        message = json.loads(raw.decode("utf-8"))
        assert _is_json_rpc(message), raw[:300]
    assert answered == expected_ids


def _refused_start(db_path: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**cli_env(db_path), "PYTHONWARNINGS": "always"}
    return subprocess.run(serve_command(db_path, "--log-level", "DEBUG"), env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60, check=False)


def test_a_refused_start_writes_nothing_on_stdout(tmp_path: Path) -> None:
    """A newer schema or a corrupt file: the refusal goes to stderr and stdout stays empty."""
    newer = tmp_path / "newer.db"
    make_newer_database(newer)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(os.urandom(8192))
    for path, code in ((newer, b"schema_too_new"), (corrupt, b"storage")):
        proc = _refused_start(path)
        assert proc.returncode == 1 and proc.stdout == b"", proc.stdout[:300]
        assert code in proc.stderr
