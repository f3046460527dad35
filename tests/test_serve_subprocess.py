"""A real `baton serve` process over stdio: a real MCP client, and the raw protocol stream itself."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.core_helpers import CORE_TOOLS, error_code, ok
from tests.helpers import cli_env, serve_command


@pytest.fixture
def stderr_file(tmp_path: Path) -> Iterator[TextIO]:
    with (tmp_path / "server-stderr.log").open("w+", encoding="utf-8") as handle:
        yield handle


def _read(handle: TextIO) -> str:
    handle.flush()
    handle.seek(0)
    return handle.read()


async def test_real_client_lists_core_tools_and_runs_calls(db_path: Path, stderr_file: TextIO) -> None:
    """An MCP client spawning `baton serve` sees the core catalog and can write and read through it."""
    command, *args = serve_command(db_path, "--log-level", "info")  # the default (warning) logs nothing here
    params = StdioServerParameters(command=command, args=args, env={"PYTHONPATH": ""})
    with anyio.fail_after(60):
        async with Client(stdio_client(params, errlog=stderr_file)) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            created = ok(await client.call_tool("create-session", {"session_id": "s", "requirements": "r"}))
            for index in range(5):
                ok(await client.call_tool("log-interaction", {"session_id": "s", "agent_type": "pm",
                                                              "content": f"m{index}"}))
            ok(await client.call_tool("create-task-group", {"session_id": "s", "group_id": "A", "name": "a"}))
            ok(await client.call_tool("update-task-group", {"session_id": "s", "group_id": "A",
                                                            "increment": {"qa_attempts": 3}}))
            missing = await client.call_tool("get-session", {"session_id": "ghost"})
            snapshot = ok(await client.call_tool("dashboard-snapshot", {"session_id": "s"}))
            health = ok(await client.call_tool("health", {}))
    assert names == CORE_TOOLS and created["created"] is True
    assert error_code(missing, "get-session") == "not_found"
    assert snapshot["counts"]["interactions"] == 5 and snapshot["task_groups"]["items"][0]["qa_attempts"] == 3
    assert [e["agent_type"] for e in snapshot["recent_logs"]] == ["project_manager"] * 5
    assert health["db_path"] == str(db_path) and health["pid"] > 0
    assert f"database: {db_path}" in _read(stderr_file)


class RawServer:
    """`baton serve` spoken to line by line: JSON-RPC requests in, every stdout line kept."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.stdin = process.stdin
        self.stdout = BufferedByteReceiveStream(process.stdout)
        self.lines: list[bytes] = []

    async def send(self, message: dict[str, Any]) -> None:
        await self.stdin.send(json.dumps(message).encode() + b"\n")

    async def request(self, request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        while True:
            line = await self.stdout.receive_until(b"\n", 10_000_000)
            self.lines.append(line)
            message: dict[str, Any] = json.loads(line)
            if message.get("id") == request_id:
                return message

    async def close(self) -> None:
        await self.stdin.aclose()
        try:
            while True:
                self.lines.append(await self.stdout.receive_until(b"\n", 10_000_000))
        except (anyio.EndOfStream, anyio.IncompleteRead):
            pass
        await self.process.wait()


async def test_every_stdout_line_is_json_rpc_and_logs_go_to_stderr(db_path: Path, stderr_file: TextIO) -> None:
    """With debug logging on, stdout carries only JSON-RPC messages; the log (with the db path) is on stderr."""
    command = serve_command(db_path, "--log-level", "DEBUG")
    with anyio.fail_after(60):
        process = await anyio.open_process(command, stderr=stderr_file, env=cli_env(db_path))
        server = RawServer(process)
        try:
            init = await server.request(1, "initialize", {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}})
            await server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            listed = await server.request(2, "tools/list", {})
            created = await server.request(3, "tools/call", {"name": "create-session",
                                                             "arguments": {"session_id": "s", "requirements": "r"}})
            failed = await server.request(4, "tools/call", {"name": "create-session",
                                                            "arguments": {"requirements": ""}})
            unknown = await server.request(5, "no/such/method", {})
        finally:
            await server.close()
    assert process.returncode == 0
    assert init["result"]["serverInfo"]["name"] == "baton"
    assert {tool["name"] for tool in listed["result"]["tools"]} == CORE_TOOLS
    assert created["result"]["structuredContent"]["session_id"] == "s" and not created["result"].get("isError")
    assert failed["result"]["isError"] is True
    assert failed["result"]["content"][0]["text"].startswith("Error executing tool create-session: invalid:")
    assert "error" in unknown
    assert len(server.lines) >= 5
    for line in server.lines:
        message = json.loads(line)
        assert isinstance(message, dict) and message["jsonrpc"] == "2.0", line
    log = _read(stderr_file)
    assert f"database: {db_path}" in log and "DEBUG" in log
    assert '"jsonrpc"' not in log


def test_serve_with_an_unknown_tool_name_fails_before_serving(db_path: Path) -> None:
    """`baton serve --tools bogus` exits 2 with the invalid error JSON on stderr and nothing on stdout."""
    proc = subprocess.run(serve_command(db_path, "--tools", "create-session,bogus"), env=cli_env(db_path),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    error = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "invalid" and "bogus" in error["message"]
    assert not db_path.exists(), "nothing was created for a server that never started"

