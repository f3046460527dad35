"""HTTP load: concurrent SDK streamable-HTTP clients writing through `baton serve --transport http`.

    python -m stress.http_load                                  # 8 clients x 1000 writes, 2 workers
    python -m stress.http_load --clients 4 --writes 50
    python -m stress.http_load --sigterm-after 2000             # SIGTERM the server mid-load

Starts a real `baton serve --transport http --workers N` on a fresh database with a write key;
each client is the SDK's `Client` over `streamable_http_client`, with the key as a bearer header,
calling `log-interaction` in a bounded loop, each write with its own idempotency key. Then the
SQLite file is checked: every acknowledged write is there exactly once, nothing is there that was
never attempted, and every row carries the key's agent id (the caller, filled in by the server).

Without --sigterm-after: 0 errors allowed. Prints calls/s and the p50/p99 latency of a call.

With --sigterm-after N: the server gets SIGTERM once N writes are acknowledged. Calls in flight
finish (graceful shutdown), later ones fail to connect: a client stops at its first failed call,
whose outcome it does not know. The server must exit 0 and no acknowledged write may be lost.
Then a new server is started and every unanswered write is sent again with its idempotency key:
afterwards every attempted write is in the file exactly once.

Exit 1 if any check fails.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from stress.harness import SESSION_ID, Tally, Verdict, cli_env, percentile, prepare_database, verify

Mode = Literal["legacy", "auto"]
AGENT = "http-loader"
CALL_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0


@dataclass
class LoadResult:
    clients: int
    writes: int
    workers: int
    seconds: float
    tally: Tally
    verdict: Verdict
    foreign_agents: int  # rows whose agent_id is not the key's
    sigterm_after: int | None = None
    server_exit: int | None = None
    unanswered: int = 0  # writes whose outcome a client never learned (SIGTERM mode)
    replayed: int = 0  # of those, how many the server had committed (the retry was an idempotent replay)
    after_retry: Verdict | None = None
    retry_errors: list[str] = field(default_factory=list)

    @property
    def calls_per_second(self) -> float:
        return len(self.tally.latencies_ms) / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        verdict_ok = (self.verdict.ok and self.foreign_agents == 0 and not self.tally.errors
                      and self.server_exit == 0)
        if self.sigterm_after is None:
            return verdict_ok
        retried_ok = (self.after_retry is not None and self.after_retry.ok and not self.retry_errors
                      and self.after_retry.acked == len(self.tally.calls))
        return verdict_ok and retried_ok

    def line(self) -> str:
        t, v = self.tally, self.verdict
        text = (f"{self.clients} HTTP clients x {self.writes} log-interaction writes, {self.workers} workers: "
                f"{len(t.latencies_ms)} acknowledged in {self.seconds:.1f}s = {self.calls_per_second:.0f} calls/s; "
                f"latency p50 {percentile(t.latencies_ms, 50):.1f} ms p99 {percentile(t.latencies_ms, 99):.1f} ms; "
                f"errors {len(t.errors)}; lost {len(v.lost)}; duplicated {len(v.duplicated)}; "
                f"phantom {len(v.phantom)}; rows not attributed to {AGENT!r}: {self.foreign_agents}; "
                f"integrity {v.integrity}; server exit {self.server_exit}")
        if self.sigterm_after is not None:
            retried = self.after_retry
            text += (f"\n  SIGTERM after {self.sigterm_after} acknowledged; "
                     f"{self.unanswered} unanswered writes retried with their idempotency keys "
                     f"({self.replayed} had been committed: replayed) -> "
                     + (f"{retried.acked} of {len(t.calls)} attempted writes in the file, lost {len(retried.lost)}, "
                        f"duplicated {len(retried.duplicated)}, retry errors {len(self.retry_errors)}"
                        if retried is not None else "not retried"))
        return text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def http_server(db_path: Path, workers: int, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`baton serve --transport http` as a real process on a free loopback port, killed if still running after."""
    port = free_port()
    command = [sys.executable, "-m", "baton", "serve", "--db", str(db_path), "--transport", "http",
               "--port", str(port), "--workers", str(workers)]
    with log.open("ab") as err:
        # A session of its own: if it must be killed, its workers go too (SIGKILL to the uvicorn
        # supervisor alone would leave them serving).
        proc = subprocess.Popen(command, env=cli_env(db_path), stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                start_new_session=True)
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def stop(proc: subprocess.Popen[bytes], signalled: bool = False) -> int:
    """SIGTERM (once: a second one makes uvicorn skip the graceful shutdown), then the exit code."""
    if not signalled:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=120)


async def wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    """Until /healthz answers 200 (bounded); fail at once if the server exits."""
    async with httpx2.AsyncClient(timeout=5) as http:
        with anyio.fail_after(READY_TIMEOUT_S):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
                try:
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                await anyio.sleep(0.05)  # polling a port that is not listening yet; the loop is bounded above


def write_arguments(marker: str) -> dict[str, str]:
    # No agent_id: the server fills in the key's agent. The marker is the content and the retry key.
    return {"session_id": SESSION_ID, "agent_type": "developer", "content": marker, "idempotency_key": marker}


class ServerGone(Exception):
    """A call failed at the transport: the server is going away (SIGTERM mode), outcome unknown."""


async def run_client(url: str, key: str, mode: Mode, markers: list[str], tally: Tally, *,
                     stop_at_failure: bool, on_ack: anyio.Event | None = None, ack_target: int = 0) -> int:
    """One SDK client writing `markers` in order; with `stop_at_failure`, a failed call ends the loop.
    Returns how many writes the server answered as idempotent replays (already written before)."""
    replays = 0
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=CALL_TIMEOUT_S)) as http, \
                Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as client:
            for marker in markers:
                tally.attempted["log-interaction"].add(marker)
                tally.calls[marker] = ("http", len(tally.calls))
                started = time.perf_counter()
                try:
                    with anyio.fail_after(CALL_TIMEOUT_S):
                        result = await client.call_tool("log-interaction", write_arguments(marker))
                except Exception as exc:  # any failure of the call has one meaning here: outcome unknown
                    if stop_at_failure:
                        raise ServerGone(marker) from exc
                    tally.errors.append(f"{marker}: {type(exc).__name__}: {exc}")
                    continue
                elapsed_ms = (time.perf_counter() - started) * 1000
                if result.is_error:
                    text = " ".join(getattr(block, "text", "") for block in result.content)
                    tally.errors.append(f"{marker}: {text}")
                    continue
                tally.latencies_ms.append(elapsed_ms)
                tally.acked["log-interaction"].add(marker)
                replays += bool((result.structured_content or {}).get("idempotent"))
                if on_ack is not None and len(tally.latencies_ms) >= ack_target:
                    on_ack.set()
    except Exception as exc:
        # Stopping at a failed call (SIGTERM mode), and closing a client against a server that is going
        # away, are expected there; anything else (connecting, closing) is an error of this run.
        if not stop_at_failure:
            tally.errors += [f"client: {type(leaf).__name__}: {leaf}" for leaf in leaves(exc)]
    return replays


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups: the SDK client raises its task group's."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def foreign_agents(db_path: Path) -> int:
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT count(*) FROM logs WHERE session_id = ? AND agent_id IS NOT ?",
                           (SESSION_ID, AGENT)).fetchone()
    return int(row[0])


async def create_key(db_path: Path) -> str:
    from baton import keys
    from baton.store import Store

    async with await Store.open(db_path) as store:
        return str((await keys.create(store, AGENT, "read,write", note="stress.http_load"))["key"])


async def run_load(db_path: Path, clients: int = 8, writes: int = 1000, workers: int = 2, mode: Mode = "legacy",
                   sigterm_after: int | None = None) -> LoadResult:
    await prepare_database(db_path)
    key = await create_key(db_path)
    log = db_path.with_suffix(".server.log")
    tally = Tally()
    lanes = [[f"c{client}-{n}" for n in range(writes)] for client in range(clients)]
    server_exit: int | None = None
    with http_server(db_path, workers, log) as (proc, url):
        await wait_ready(proc, url)
        reached = anyio.Event()
        started = time.perf_counter()
        with anyio.fail_after(CALL_TIMEOUT_S + clients * writes * 0.1):  # a hung run fails instead of hanging
            async with anyio.create_task_group() as tg:
                for markers in lanes:
                    tg.start_soon(functools.partial(run_client, url, key, mode, markers, tally,
                                                    stop_at_failure=sigterm_after is not None, on_ack=reached,
                                                    ack_target=sigterm_after or 0))
                if sigterm_after is not None:
                    await reached.wait()
                    proc.send_signal(signal.SIGTERM)
        seconds = time.perf_counter() - started
        server_exit = await anyio.to_thread.run_sync(stop, proc, sigterm_after is not None)
    result = LoadResult(clients, writes, workers, seconds, tally, verify(db_path, tally), foreign_agents(db_path),
                        sigterm_after=sigterm_after, server_exit=server_exit)
    if sigterm_after is not None:
        await retry_unanswered(db_path, key, mode, workers, log, result)
    return result


async def retry_unanswered(db_path: Path, key: str, mode: Mode, workers: int, log: Path, result: LoadResult) -> None:
    """Send every write whose answer was lost again, with the same idempotency key, to a new server."""
    tally = result.tally
    unanswered = [marker for marker in tally.calls if marker not in tally.acked["log-interaction"]]
    result.unanswered = len(unanswered)
    retried = Tally()
    with http_server(db_path, workers, log) as (proc, url):
        await wait_ready(proc, url)
        with anyio.fail_after(CALL_TIMEOUT_S + len(unanswered)):
            result.replayed = await run_client(url, key, mode, unanswered, retried, stop_at_failure=False)
        retry_exit = await anyio.to_thread.run_sync(stop, proc)
        if retry_exit != 0:
            result.retry_errors.append(f"the retry server exited with {retry_exit}")
    combined = Tally()
    combined.attempted["log-interaction"] = set(tally.attempted["log-interaction"])
    combined.acked["log-interaction"] = tally.acked["log-interaction"] | retried.acked["log-interaction"]
    result.after_retry = verify(db_path, combined)
    result.retry_errors = retried.errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.http_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent SDK clients (default 8)")
    parser.add_argument("--writes", type=int, default=1000, help="log-interaction writes per client (default 1000)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--mode", choices=["legacy", "auto"], default="legacy",
                        help="client protocol era: legacy (2025-11-25 handshake, default) or auto (2026-07-28)")
    parser.add_argument("--sigterm-after", type=int, metavar="N",
                        help="send SIGTERM to the server once N writes are acknowledged")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 64 and 1 <= args.writes <= 100_000):
        parser.error("--clients 1..64 and --writes 1..100000")
    if args.sigterm_after is not None and not 1 <= args.sigterm_after < args.clients * args.writes:
        parser.error("--sigterm-after N: 1 <= N < clients x writes")
    with tempfile.TemporaryDirectory(prefix="baton-http-load-") as tmp:
        result = anyio.run(lambda: run_load(Path(tmp) / "load.db", args.clients, args.writes, args.workers,
                                            args.mode, args.sigterm_after))
    print(result.line(), flush=True)
    for error in [*result.tally.errors, *result.retry_errors][:5]:
        print(f"  error: {error}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
