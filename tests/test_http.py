"""The streamable HTTP transport: API keys, scopes, identity and audit, Host/Origin/body/timeout limits,
real `baton serve --transport http` processes (a second process, two workers, SIGTERM, logs)."""

from __future__ import annotations

import getpass
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from baton import keys
from baton.http_app import HttpSettings, build_app
from baton.migrations import latest_version
from baton.store import Store
from tests.core_helpers import (  # noqa: F401 (the *_fixture names: stores start from a migrated copy)
    connected,
    copied_store_fixture,
    dump_tables,
    error_code,
    http_client,
    http_served,
    migrated_template_fixture,
    ok,
    result_text,
)
from tests.helpers import cli_env, cli_json, run_cli, serve_command

MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2025-11-25"}


def _call(tool: str, arguments: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}


async def post(http: httpx2.AsyncClient, url: str, tool: str, arguments: dict[str, Any], key: str | None = None,
               **headers: str) -> httpx2.Response:
    """One stateless tools/call as a raw HTTP POST (no initialize needed in stateless JSON mode)."""
    sent = {**MCP_HEADERS, **({"authorization": f"Bearer {key}"} if key else {}), **headers}
    return await http.post(f"{url}/mcp", json=_call(tool, arguments), headers=sent)


def tool_result(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.text)
    result: dict[str, Any] = response.json()["result"]
    return result


async def new_key(store: Store, agent_id: str = "alice", scopes: str = "read,write") -> str:
    return str((await keys.create(store, agent_id, scopes))["key"])


@asynccontextmanager
async def served(store: Store, **settings: Any) -> AsyncIterator[str]:
    """The whole HTTP app on a loopback port in this event loop, sharing `store`."""
    http_settings = HttpSettings(db_path=str(store.path), **settings)
    async with http_served(build_app(http_settings, store=store), http_settings) as url:
        yield url


async def raw_exchange(url: str, data: bytes, *, read_for_s: float = 20) -> bytes:
    """Send raw bytes on a new connection, then read until the server closes it (bounded)."""
    host, port = url.removeprefix("http://").split(":")
    received = b""
    with anyio.fail_after(read_for_s):
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(data)
            try:
                while True:
                    received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
                pass
    return received


# -- keys and status codes (in-process servers) -------------------------------------------------------


async def test_healthz_needs_no_key_and_says_only_status_schema_and_backend(store: Store) -> None:
    """GET /healthz answers without a credential: status, schema version and backend, no path or URL."""
    async with served(store) as url, httpx2.AsyncClient() as http:
        response = await http.get(f"{url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "schema_version": latest_version(), "backend": "sqlite"}
    assert str(store.path.parent) not in response.text


async def test_missing_unknown_revoked_and_expired_keys_get_401_without_oauth_metadata(store: Store) -> None:
    """Every bad credential is HTTP 401; no OAuth protected-resource metadata is advertised anywhere."""
    good = await new_key(store)
    revoked = await keys.create(store, "bob")
    await keys.revoke(store, revoked["key_id"])
    expired = await keys.create(store, "carol", expires_in=keys.parse_duration("1h"))
    conn = sqlite3.connect(store.path)  # an hour passes
    with conn:
        conn.execute("UPDATE api_keys SET expires_at = '2000-01-01T00:00:00.000Z' WHERE key_id = ?",
                     (expired["key_id"],))
    conn.close()
    unknown = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    async with served(store) as url, httpx2.AsyncClient() as http:
        statuses = {}
        for name, key in [("missing", None), ("unknown", unknown), ("garbage", "not-a-key"),
                          ("revoked", revoked["key"]), ("expired", expired["key"]), ("good", good)]:
            response = await post(http, url, "health", {}, key)
            statuses[name] = response.status_code
            if response.status_code == 401:
                challenge = response.headers["www-authenticate"]
                assert challenge.startswith("Bearer ") and "resource_metadata" not in challenge, challenge
        well_known = [(await http.get(f"{url}{path}")).status_code for path in (
            "/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-authorization-server")]
    assert statuses == {"missing": 401, "unknown": 401, "garbage": 401, "revoked": 401, "expired": 401, "good": 200}
    assert well_known == [404, 404, 404]


async def test_sdk_client_without_a_key_fails_and_with_one_succeeds(store: Store) -> None:
    """The SDK's HTTP client gets the 401 as an MCPError; with the key it lists and calls tools."""
    key = await new_key(store)
    async with served(store) as url:
        with pytest.raises(Exception) as refused:  # an ExceptionGroup; its leaf is the MCPError
            async with http_client(url, "legacy") as client:
                await client.list_tools()
        async with http_client(url, "auto", key) as client:
            health = ok(await client.call_tool("health", {}))
    leaves = list(_leaves(refused.value))
    assert any(isinstance(leaf, MCPError) for leaf in leaves), leaves
    assert health["schema_version"] == latest_version()


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


async def test_bad_host_is_421_and_a_disallowed_browser_origin_is_403(store: Store) -> None:
    """Host and Origin are checked on every request with a valid key; listed names and origins pass."""
    key = await new_key(store)
    async with served(store, host="0.0.0.0", allowed_hosts=("baton.example.com", "10.0.0.5:8443"),
                      allowed_origins=("https://dash.example.com",)) as url, httpx2.AsyncClient() as http:

        async def status(**headers: str) -> int:
            return (await post(http, url, "health", {}, key, **headers)).status_code

        results = {
            "evil host": await status(host="evil.example"),
            "rebinding host": await status(host="evil.example:8765"),
            "allowed host": await status(host="baton.example.com"),
            "allowed host any port": await status(host="baton.example.com:443"),
            "exact host:port": await status(host="10.0.0.5:8443"),
            "same ip, other port": await status(host="10.0.0.5:9999"),
            "loopback host": await status(host="127.0.0.1:8765"),
            "evil origin": await status(origin="http://evil.example"),
            "allowed origin": await status(origin="https://dash.example.com"),
            "loopback origin": await status(origin="http://localhost:3000"),
            "no origin": await status(),
        }
    assert results == {"evil host": 421, "rebinding host": 421, "allowed host": 200, "allowed host any port": 200,
                       "exact host:port": 200, "same ip, other port": 421, "loopback host": 200, "evil origin": 403,
                       "allowed origin": 200, "loopback origin": 200, "no origin": 200}


async def test_loopback_server_refuses_a_rebinding_host_too(store: Store) -> None:
    """The default loopback bind checks Host as well (explicit settings, not the SDK's host-based default)."""
    key = await new_key(store)
    async with served(store) as url, httpx2.AsyncClient() as http:
        response = await post(http, url, "health", {}, key, host="attacker.example:8765")
    assert response.status_code == 421


async def test_oversized_bodies_get_413_whether_declared_or_streamed(store: Store) -> None:
    """Over 8 MiB is 413: a Content-Length over the bound is refused unread, a chunked body as it streams."""
    key = await new_key(store)
    limit = HttpSettings(db_path="").max_body_bytes
    assert limit == 8 * 1024 * 1024
    head = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n")
    async with served(store) as url:
        declared = await raw_exchange(url, (head + f"Content-Length: {limit + 1}\r\n\r\n").encode() + b"{")
        chunk = b"x" * (limit + 1)
        streamed = await raw_exchange(
            url, (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + f"{len(chunk):x}\r\n".encode() + chunk)
        async with httpx2.AsyncClient() as http:  # a large body under the bound is served
            under = await post(http, url, "create-session", {"requirements": "r" * (limit // 2)}, key)
    assert declared.startswith(b"HTTP/1.1 413"), declared[:100]
    assert streamed.startswith(b"HTTP/1.1 413"), streamed[:100]
    assert under.status_code == 200 and "invalid" in json.dumps(under.json())  # the model's own length limit


async def test_a_stalled_body_gets_408_and_a_stalled_head_is_disconnected(store: Store) -> None:
    """A client that stops mid-body gets 408; one that never completes its request head is disconnected."""
    key = await new_key(store)
    async with served(store, body_timeout_s=1, head_timeout_s=1) as url:
        with anyio.fail_after(10):
            stalled_body = await raw_exchange(url, (
                f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"").encode())
            stalled_head = await raw_exchange(url, b"POST /mcp HTTP/1.1\r\nHost: 127.0")
            silent = await raw_exchange(url, b"")
        async with httpx2.AsyncClient() as http:  # the server still serves
            assert (await post(http, url, "health", {}, key)).status_code == 200
    assert stalled_body.startswith(b"HTTP/1.1 408"), stalled_body[:100]
    assert stalled_head == b"" and silent == b""


async def test_idle_connections_cannot_hold_the_concurrency_limit_for_ever(store: Store) -> None:
    """Connections beyond the per-worker limit get 503; silent ones are closed at the head deadline, freeing it."""
    key = await new_key(store)
    async with served(store, concurrency=2, head_timeout_s=1) as url:
        host, port = url.removeprefix("http://").split(":")
        with anyio.fail_after(20):
            silent = [await anyio.connect_tcp(host, int(port)) for _ in range(2)]
            async with httpx2.AsyncClient() as http:
                crowded = await post(http, url, "health", {}, key)
            for stream in silent:  # the server ends them: receive() sees the end of the stream
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stream.receive()
                await stream.aclose()
            async with httpx2.AsyncClient() as http:
                freed = await post(http, url, "health", {}, key)
    assert crowded.status_code == 503 and freed.status_code == 200


# -- scopes, identity, audit ----------------------------------------------------------------------


async def test_a_read_key_reads_but_a_write_is_forbidden_and_writes_nothing(store: Store) -> None:
    """A `read` key may call read-only tools; a write tool is the tool error `forbidden`, nothing changes."""
    writer, reader = await new_key(store, "writer"), await new_key(store, "reader", "read")
    async with served(store) as url:
        async with http_client(url, "auto", writer) as client:
            ok(await client.call_tool("create-session", {"session_id": "s", "requirements": "r"}))
        before = dump_tables(store.path)
        async with http_client(url, "legacy", reader) as client:
            refused = await client.call_tool("log-interaction", {"session_id": "s", "agent_type": "pm", "content": "x"})
            # Scope is checked before validation: a read key learns nothing about a write's inputs.
            bad_too = await client.call_tool("create-session", {"bogus": 1})
            session = ok(await client.call_tool("get-session", {"session_id": "s"}))
    assert error_code(refused, "log-interaction") == "forbidden" and "read,write" in result_text(refused)
    assert error_code(bad_too, "create-session") == "forbidden"
    assert session["session_id"] == "s"
    after = dump_tables(store.path)
    assert {name for name in before if before[name] != after[name]} <= {"api_keys"}  # last_used_at only


async def test_writes_are_audited_with_the_keys_agent_and_it_is_the_default_agent_id(store: Store,
                                                                                     db_path: Path) -> None:
    """Each committed write has an audit row (agent, key, http, tool, session); a failed write has none;
    a write tool's omitted agent_id becomes the key's agent; read filters are not narrowed."""
    key = await keys.create(store, "alice")
    async with served(store) as url, http_client(url, "auto", key["key"]) as client:
        ok(await client.call_tool("create-session", {"session_id": "s", "requirements": "r"}))
        ok(await client.call_tool("log-interaction", {"session_id": "s", "agent_type": "pm", "content": "mine"}))
        ok(await client.call_tool("log-interaction", {"session_id": "s", "agent_type": "pm", "content": "theirs",
                                                      "agent_id": "developer_1"}))
        ok(await client.call_tool("log-tokens", {"session_id": "s", "agent_type": "pm", "input_tokens": 5}))
        failed = await client.call_tool("update-session-status", {"session_id": "s", "status": "bogus"})
        logs = ok(await client.call_tool("get-logs", {"session_id": "s"}))
        tokens = ok(await client.call_tool("token-summary", {"session_id": "s", "by": "agent_id"}))
    assert error_code(failed, "update-session-status") == "invalid"
    assert [(e["content"], e["agent_id"]) for e in logs["items"]] == [("mine", "alice"), ("theirs", "developer_1")]
    assert tokens["by"] == {"alice": 5}
    trail = await keys.audit(store, session_id="s")
    assert [(r["tool"], r["agent_id"], r["key_id"], r["via"]) for r in reversed(trail)] == [
        ("create-session", "alice", key["key_id"], "http"), ("log-interaction", "alice", key["key_id"], "http"),
        ("log-interaction", "alice", key["key_id"], "http"), ("log-tokens", "alice", key["key_id"], "http")]
    # ... and answerable from the CLI, which records its own writes as the local user.
    run_cli(db_path, "log-interaction", "--session-id", "s", "--agent-type", "qa", "--content", "cli")
    listed = cli_json(db_path, "audit", "--session", "s", "--limit", "2")["items"]
    assert [(r["tool"], r["via"]) for r in listed] == [("log-interaction", "cli"), ("log-tokens", "http")]
    assert listed[0]["agent_id"].startswith("local:") and listed[0]["key_id"] is None
    assert cli_json(db_path, "audit", "--agent", "alice")["items"] == await keys.audit(store, agent_id="alice")


async def test_batch_entries_default_to_the_keys_agent_too(store: Store) -> None:
    """log-interactions: each entry without an agent_id is the key's agent's; explicit ones are kept."""
    key = await new_key(store, "alice")
    async with served(store, tools="create-session,log-interactions,get-logs") as url, \
            http_client(url, "auto", key) as client:
        ok(await client.call_tool("create-session", {"session_id": "s", "requirements": "r"}))
        ok(await client.call_tool("log-interactions", {"session_id": "s", "entries": [
            {"agent_type": "pm", "content": "a"}, {"agent_type": "pm", "content": "b", "agent_id": "dev_2"}]}))
        logs = ok(await client.call_tool("get-logs", {"session_id": "s"}))
    assert [(e["content"], e["agent_id"]) for e in logs["items"]] == [("a", "alice"), ("b", "dev_2")]


async def test_over_stdio_the_caller_is_the_local_user_and_agent_ids_are_not_filled(store: Store) -> None:
    """Without a key (the in-memory transport, as over stdio) writes are audited as `local:<user>` via stdio,
    and an omitted agent_id stays empty."""
    async with connected(store, "auto") as client:
        ok(await client.call_tool("create-session", {"session_id": "s", "requirements": "r"}))
        ok(await client.call_tool("log-interaction", {"session_id": "s", "agent_type": "pm", "content": "x"}))
        logs = ok(await client.call_tool("get-logs", {"session_id": "s"}))
    assert [e["agent_id"] for e in logs["items"]] == [None]
    trail = await keys.audit(store, session_id="s")
    assert {(r["agent_id"], r["key_id"], r["via"]) for r in trail} == {(f"local:{getpass.getuser()}", None, "stdio")}


async def test_an_idempotent_replay_adds_no_audit_row(store: Store) -> None:
    """Only transactions that changed something are audited: a retried write adds no row."""
    key = await new_key(store)
    async with served(store) as url, http_client(url, "auto", key) as client:
        ok(await client.call_tool("create-session", {"session_id": "s", "requirements": "r"}))
        for _ in range(3):
            ok(await client.call_tool("log-interaction", {"session_id": "s", "agent_type": "pm", "content": "x",
                                                          "idempotency_key": "k1"}))
    assert [r["tool"] for r in await keys.audit(store, session_id="s")] == ["log-interaction", "create-session"]


# -- real server processes ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    url: str
    stderr: TextIO
    stdout: TextIO

    def logs(self) -> tuple[str, str]:
        for handle in (self.stdout, self.stderr):
            handle.flush()
            handle.seek(0)
        return self.stdout.read(), self.stderr.read()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the graceful shutdown."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@contextmanager
def http_process(db_path: Path, tmp_path: Path, *extra: str, name: str = "server") -> Iterator[ServerProcess]:
    """`baton serve --transport http` on a free loopback port, ready (its /healthz answers) when yielded."""
    port = _free_port()
    with (tmp_path / f"{name}.err").open("w+", encoding="utf-8") as err, \
            (tmp_path / f"{name}.out").open("w+", encoding="utf-8") as out:
        proc = subprocess.Popen(serve_command(db_path, "--transport", "http", "--port", str(port), *extra),
                                env=cli_env(db_path), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        server = ServerProcess(proc, f"http://127.0.0.1:{port}", err, out)
        try:
            deadline = time.monotonic() + 60
            while True:  # bounded readiness wait: the port answers once the lifespan has opened the store
                assert proc.poll() is None, f"server exited {proc.returncode}: {server.logs()[1]}"
                try:
                    if httpx2.get(f"{server.url}/healthz", timeout=5).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                assert time.monotonic() < deadline, "server not ready within 60 s"
                time.sleep(0.05)
            yield server
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


@pytest.mark.slow
async def test_a_revocation_is_seen_at_once_by_a_second_server_process(tmp_path: Path, db_path: Path) -> None:
    """Two server processes on one database: a key revoked with the CLI is refused by both on the next request."""
    key = cli_json(db_path, "keys", "create", "--agent-id", "alice")
    with http_process(db_path, tmp_path, name="a") as first, http_process(db_path, tmp_path, name="b") as second:
        async with httpx2.AsyncClient() as http:
            before = [(await post(http, s.url, "health", {}, key["key"])).status_code for s in (first, second)]
            revoked = cli_json(db_path, "keys", "revoke", key["key_id"])
            after = [(await post(http, s.url, "health", {}, key["key"])).status_code for s in (first, second)]
        assert [first.stop(), second.stop()] == [0, 0]
    assert before == [200, 200] and after == [401, 401]
    assert revoked["revoked_at"] is not None and revoked["active"] is False


@pytest.mark.slow
@pytest.mark.parametrize(("flags", "says"), [
    (["--host", "0.0.0.0", "--no-auth", "--allowed-host", "baton.example.com"], "--no-auth is refused"),
    (["--host", "0.0.0.0"], "needs --allowed-host"),
    (["--host", "192.168.1.10", "--allowed-origin", "https://x.example/", "--allowed-host", "x"], "--allowed-origin"),
    (["--workers", "0"], "--workers 0"),
])
def test_unsafe_http_configurations_are_refused_before_anything_starts(db_path: Path, flags: list[str],
                                                                       says: str) -> None:
    """--no-auth beyond loopback, a non-loopback bind without --allowed-host, bad values: exit 2, nothing created."""
    proc = subprocess.run(serve_command(db_path, "--transport", "http", "--port", str(_free_port()), *flags),
                          env=cli_env(db_path), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    error = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "invalid" and says in error["message"]
    assert not db_path.exists()


def test_http_flags_without_the_http_transport_are_refused(db_path: Path) -> None:
    """`baton serve --port 1` (stdio) is an invalid combination, not silently ignored."""
    proc = subprocess.run(serve_command(db_path, "--port", "9000", "--no-auth"), env=cli_env(db_path),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "--port, --no-auth only applies to --transport http" in proc.stderr


@pytest.mark.slow
async def test_two_workers_serve_the_same_database(tmp_path: Path, db_path: Path) -> None:
    """--workers 2: both worker processes answer calls, and their writes land in the one database."""
    key = cli_json(db_path, "keys", "create", "--agent-id", "alice")["key"]
    with http_process(db_path, tmp_path, "--workers", "2") as server:
        pids: set[int] = set()
        with anyio.fail_after(60):
            async with httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}) as setup:
                tool_result(await post(setup, server.url, "create-session", {"session_id": "s", "requirements": "r"}))
            for batch in range(20):  # new connections each time, until both workers have answered
                async def one(index: int, round_: int = batch) -> None:
                    async with httpx2.AsyncClient() as http:
                        tool_result(await post(http, server.url, "log-interaction", {
                            "session_id": "s", "agent_type": "pm", "content": f"{round_}-{index}"}, key))
                        health = tool_result(await post(http, server.url, "health", {}, key))
                        pids.add(health["structuredContent"]["pid"])

                async with anyio.create_task_group() as tg:
                    for index in range(8):
                        tg.start_soon(one, index)
                if len(pids) == 2:
                    break
        assert server.stop() == 0
    assert len(pids) == 2 and server.proc.pid not in pids
    count = sqlite3.connect(db_path).execute("SELECT count(*) FROM logs").fetchone()[0]
    assert count == 8 * (batch + 1)


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.slow
async def test_workers_stop_when_the_parent_is_killed(tmp_path: Path, db_path: Path) -> None:
    """SIGKILL of the --workers parent: its workers notice and stop instead of serving on, unsupervised."""
    key = cli_json(db_path, "keys", "create", "--agent-id", "alice")["key"]
    with http_process(db_path, tmp_path, "--workers", "2") as server:
        pids: set[int] = set()
        with anyio.fail_after(60):
            while len(pids) < 2:
                async with httpx2.AsyncClient() as http:
                    pids.add(tool_result(await post(http, server.url, "health", {}, key))["structuredContent"]["pid"])
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        with anyio.fail_after(20):
            while any(_running(pid) for pid in pids):  # noqa: ASYNC110 (other processes: nothing to await)
                await anyio.sleep(0.2)


@pytest.mark.slow
async def test_sigterm_during_in_flight_calls_loses_no_acknowledged_write(tmp_path: Path, db_path: Path) -> None:
    """8 clients writing through 2 workers; SIGTERM mid-load: every write acknowledged with 200 is in the file,
    and the server exits 0."""
    key = cli_json(db_path, "keys", "create", "--agent-id", "loader")["key"]
    acknowledged: list[int] = []
    refused: list[str] = []
    with http_process(db_path, tmp_path, "--workers", "2") as server:
        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}) as setup:
            tool_result(await post(setup, server.url, "create-session", {"session_id": "s", "requirements": "r"}))
        started = anyio.Event()

        async def client(index: int) -> None:
            async with httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=30) as http:
                for n in range(10_000):
                    try:
                        response = await post(http, server.url, "log-interaction", {
                            "session_id": "s", "agent_type": "developer", "content": f"{index}-{n}"})
                    except httpx2.TransportError as exc:  # the server is going away: not acknowledged
                        refused.append(type(exc).__name__)
                        return
                    if response.status_code != 200:
                        refused.append(str(response.status_code))
                        return
                    result = response.json()["result"]
                    assert not result.get("isError"), result
                    acknowledged.append(result["structuredContent"]["log_id"])
                    if len(acknowledged) >= 200:
                        started.set()

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for index in range(8):
                    tg.start_soon(client, index)
                await started.wait()
                server.proc.send_signal(signal.SIGTERM)
            exit_code = server.proc.wait(timeout=60)
    stored = {row[0] for row in sqlite3.connect(db_path).execute("SELECT log_id FROM logs")}
    assert exit_code == 0, server.logs()[1]
    assert len(acknowledged) >= 200 and len(refused) == 8
    assert set(acknowledged) <= stored, f"{len(set(acknowledged) - stored)} acknowledged writes were lost"


@pytest.mark.slow
async def test_keys_never_appear_in_logs_errors_or_health(tmp_path: Path, db_path: Path) -> None:
    """At --log-level debug, with good, revoked, unknown and read-only keys and failing calls, no key secret
    is in the server's stderr, stdout, any response body, or the database file."""
    good = cli_json(db_path, "keys", "create", "--agent-id", "alice")
    reader = cli_json(db_path, "keys", "create", "--agent-id", "bob", "--scopes", "read")
    revoked = cli_json(db_path, "keys", "create", "--agent-id", "carol")
    cli_json(db_path, "keys", "revoke", revoked["key_id"])
    unknown = good["key"][:-6] + "ZZZZZZ"
    secrets_ = [k["key"] for k in (good, reader, revoked)] + [unknown]
    bodies: list[str] = []
    with http_process(db_path, tmp_path, "--log-level", "debug") as server:
        async with httpx2.AsyncClient() as http:
            for key in secrets_:
                for tool, arguments in [
                        ("health", {}), ("create-session", {"requirements": ""}), ("get-session", {"session_id": "g"}),
                        ("log-interaction", {"session_id": "ghost", "agent_type": "pm", "content": "x"})]:
                    response = await post(http, server.url, tool, arguments, key)
                    bodies.append(f"{response.status_code} {response.headers} {response.text}")
            bodies.append((await http.get(f"{server.url}/healthz")).text)
        assert server.stop() == 0
        out, err = server.logs()
    listed = run_cli(db_path, "keys", "list").stdout
    everything = "\n".join([out, err, listed, *bodies])
    assert "DEBUG" in err and "forbidden" in everything and "401" in everything  # the log really was verbose
    raw_db = b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p.name.startswith(db_path.name))
    for key in secrets_:
        secret = key.rsplit("_", 1)[1]
        assert secret not in everything
        assert secret.encode() not in raw_db
    assert keys.sha256(good["key"]) in {row[0] for row in sqlite3.connect(db_path).execute(
        "SELECT key_sha256 FROM api_keys")}


@pytest.mark.slow
async def test_serve_is_quiet_by_default_on_both_transports(tmp_path: Path, db_path: Path) -> None:
    """A clean start and a failing tool call print nothing on stderr at the default level (stdio and http);
    --log-level info keeps the detail."""
    key = cli_json(db_path, "keys", "create", "--agent-id", "alice")["key"]
    with (tmp_path / "stdio.err").open("w+", encoding="utf-8") as stdio_err:
        command, *args = serve_command(db_path)
        params = StdioServerParameters(command=command, args=args, env=cli_env(db_path))
        with anyio.fail_after(60):
            async with Client(stdio_client(params, errlog=stdio_err)) as client:
                failed = await client.call_tool("get-session", {"session_id": "ghost"})
                invalid = await client.call_tool("create-session", {"requirements": ""})
        stdio_err.seek(0)
        stdio_log = stdio_err.read()
    assert error_code(failed, "get-session") == "not_found" and error_code(invalid, "create-session") == "invalid"
    with http_process(db_path, tmp_path, name="quiet") as server:
        async with httpx2.AsyncClient() as http:
            failed_http = tool_result(await post(http, server.url, "get-session", {"session_id": "ghost"}, key))
        assert server.stop() == 0
        http_out, http_log = server.logs()
    with http_process(db_path, tmp_path, "--log-level", "info", name="info") as verbose:
        assert verbose.stop() == 0
        _, info_log = verbose.logs()
    assert failed_http["isError"] is True
    assert stdio_log == "" and http_log == "" and http_out == ""
    assert f"database: {db_path}" in info_log and "INFO" in info_log


def test_keys_cli_creates_lists_and_revokes_and_checks_its_input(db_path: Path) -> None:
    """keys create prints the key once with its id; list never shows a key; bad input is `invalid` (exit 2)."""
    created = cli_json(db_path, "keys", "create", "--agent-id", "ci-bot", "--scopes", "read",
                       "--expires-in", "30d", "--note", "CI")
    assert created["key"].startswith(f"baton_{created['key_id']}_") and created["scopes"] == ["read"]
    assert created["expires_at"] > created["created_at"] and created["note"] == "CI" and created["active"] is True
    listed = run_cli(db_path, "keys", "list")
    assert created["key"] not in listed.stdout and created["key"].rsplit("_", 1)[1] not in listed.stdout
    (row,) = json.loads(listed.stdout)["items"]
    assert row == {k: v for k, v in created.items() if k != "key"}
    assert cli_json(db_path, "keys", "revoke", created["key_id"])["active"] is False
    again = cli_json(db_path, "keys", "revoke", created["key_id"])
    assert again["revoked_at"] == json.loads(run_cli(db_path, "keys", "list").stdout)["items"][0]["revoked_at"]
    for argv, code in [(["keys", "revoke", "knope"], 3),
                       (["keys", "create", "--agent-id", "x", "--scopes", "admin"], 2),
                       (["keys", "create", "--agent-id", "x", "--expires-in", "0d"], 2),
                       (["keys", "create", "--agent-id", "x", "--expires-in", "soon"], 2),
                       (["keys", "create", "--agent-id", "{AGENT_ID}"], 2),
                       (["audit", "--limit", "0"], 2)]:
        proc = run_cli(db_path, *argv)
        assert proc.returncode == code, (argv, proc.stderr)
        assert json.loads(proc.stderr.strip().splitlines()[-1])["error"]["code"] in ("invalid", "not_found")
    audit = cli_json(db_path, "audit")["items"]
    assert [r["tool"] for r in audit] == ["keys-revoke", "keys-create"]  # the second revoke changed nothing


async def test_last_use_of_a_key_is_recorded(store: Store) -> None:
    """A key's last_used_at is set by its first request (and refreshed at most once a minute)."""
    key = await keys.create(store, "alice")
    async with served(store) as url, httpx2.AsyncClient() as http:
        for _ in range(3):
            assert (await post(http, url, "health", {}, key["key"])).status_code == 200
    (listed,) = await keys.list_keys(store)
    assert listed["last_used_at"] is not None and listed["last_used_at"] >= key["created_at"]


def test_settings_travel_to_workers_without_any_key(tmp_path: Path) -> None:
    """The environment variable the workers read holds the settings and no credential."""
    settings = HttpSettings(db_path=str(tmp_path / "b.db"), host="0.0.0.0", allowed_hosts=("a.example",))
    os.environ["BATON_HTTP_SETTINGS"] = settings.to_env()
    try:
        assert HttpSettings.from_env() == settings
    finally:
        del os.environ["BATON_HTTP_SETTINGS"]
    assert not any("key" in name or "token" in name for name in json.loads(settings.to_env()))
