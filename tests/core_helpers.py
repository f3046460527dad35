"""Helpers for the core-server tests: table dumps, MCP clients (in memory or over real HTTP), tool-result unpacking."""

from __future__ import annotations

import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2
import pytest
import uvicorn
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent
from starlette.types import ASGIApp

from baton import keys
from baton.http_app import HttpSettings, build_app, uvicorn_options
from baton.migrations import migrate
from baton.server import build_server
from baton.store import Store
from baton.tools import catalog, select
from tests.helpers import call, cli_env

# Every timestamp Baton writes: UTC ISO-8601 with milliseconds and Z.
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CORE_TOOLS = frozenset({
    "create-session", "get-session", "list-sessions", "update-session-status",
    "log-interaction", "save-reasoning", "save-event", "get-logs",
    "create-task-group", "update-task-group", "get-task-groups",
    "save-success-criteria", "update-success-criterion", "get-success-criteria",
    "save-state", "get-state", "log-tokens", "token-summary", "dashboard-snapshot", "health",
})
PLACEHOLDERS = ("{SESSION_ID}", "<session_id>", "$GROUP_ID", "${X}")
Mode = Literal["legacy", "auto"]
MODES: tuple[Mode, ...] = ("legacy", "auto")
Transport = Literal["memory", "http"]
TRANSPORTS: tuple[Transport, ...] = ("memory", "http")


def dump_tables(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (sqlite_sequence included), read through a separate connection."""
    conn = sqlite3.connect(db_path)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
        )]
        return {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr) for name in names}
    finally:
        conn.close()


@contextmanager
def unchanged(db_path: Path) -> Iterator[None]:
    """Assert that the block leaves every table's contents exactly as they were."""
    before = dump_tables(db_path)
    yield
    after = dump_tables(db_path)
    changed = [name for name in before if before[name] != after.get(name)]
    assert not changed, f"a failed write changed {changed}"


def run_cli_at_once(db_path: Path, *argvs: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Start `python -m baton ARGV` for every argv at the same moment; wait for all of them."""
    procs = [subprocess.Popen([sys.executable, "-m", "baton", *argv], env=cli_env(db_path), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv in argvs]
    finished = []
    for argv, proc in zip(argvs, procs, strict=True):
        out, err = proc.communicate(timeout=120)
        finished.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    return finished


async def run(store: Store, operation: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Like helpers.call, for argument names that clash with call's own (`name`)."""
    result: dict[str, Any] = (await catalog()[operation].run(store, arguments)).model_dump(mode="json")
    return result


async def new_session(store: Store, session_id: str = "s1", **arguments: Any) -> str:
    arguments.setdefault("requirements", "build the thing")
    created = await call(store, "create-session", session_id=session_id, **arguments)
    return str(created["session_id"])


@pytest.fixture(scope="session", name="migrated_template")
def migrated_template_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated to the latest schema, checkpointed into a single file, to copy from."""
    template = tmp_path_factory.mktemp("template") / "template.db"
    migrate(template)
    conn = sqlite3.connect(template)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return template


@pytest.fixture(name="store")
async def copied_store_fixture(db_path: Path, migrated_template: Path) -> AsyncIterator[Store]:
    """conftest's store, started from a copy of a migrated database (test_schema covers migrating)."""
    shutil.copyfile(migrated_template, db_path)
    opened = await Store.open(db_path)
    try:
        yield opened
    finally:
        await opened.close()


@asynccontextmanager
async def connected(store: Store, mode: Mode, tools: str = "core",
                    transport: Transport = "memory") -> AsyncIterator[Client]:
    """An MCP client of a server sharing `store` (opened in the test body, not a fixture).

    "memory": the SDK's in-memory transport. "http": a real uvicorn server on a loopback port,
    the whole HTTP app (API keys on, a write key for agent `http-tester`), the SDK's HTTP client.
    """
    if transport == "memory":
        async with Client(build_server(store.path, select(tools), store=store), mode=mode) as client:
            yield client
        return
    key = (await keys.create(store, "http-tester", note="core_helpers.connected"))["key"]
    app = build_app(HttpSettings(db_path=str(store.path), tools=tools), store=store)
    async with http_served(app) as url, http_client(url, mode, key) as client:
        yield client


@asynccontextmanager
async def http_served(app: ASGIApp, settings: HttpSettings | None = None) -> AsyncIterator[str]:
    """Serve `app` with the transport's uvicorn settings on an ephemeral loopback port, in this event loop.

    The socket is bound and listening before uvicorn starts, so a request made at once waits in the
    backlog until the lifespan has opened the store: no readiness polling."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options(settings or HttpSettings(db_path=""))))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True
    finally:
        sock.close()


@asynccontextmanager
async def http_client(url: str, mode: Mode, key: str | None = None) -> AsyncIterator[Client]:
    """The SDK's streamable HTTP client of `url`/mcp, sending `key` as the bearer token."""
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http, \
            Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as client:
        yield client


def result_text(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful tool call."""
    assert not result.is_error, result_text(result)
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def error_code(result: CallToolResult, tool: str) -> str:
    """The stable code at the start of a failed tool call's text (after the SDK's prefix)."""
    assert result.is_error, f"expected an error, got {result.structured_content}"
    text = result_text(result)
    prefix = f"Error executing tool {tool}: "
    assert text.startswith(prefix), text
    return text[len(prefix):].split(":", 1)[0]
