"""Baton over streamable HTTP against a bare SDK HTTP server, measured side by side in one run.

    .venv/bin/python bench/http_transport.py           # about 2 minutes on a 2-core machine
    .venv/bin/python bench/http_transport.py --quick   # a smoke run

(Not bench/http.py: run as a script, that name would shadow the standard library's `http`.)

Every server is a real process on a loopback port, and every client is the SDK's `Client` over
`streamable_http_client` (handshake era, as today's clients). The baseline is a bare `MCPServer`
with one no-op tool, served the way Baton serves (stateless, JSON responses, uvicorn, one process).

1. Sequential: log-interaction p50/p99 and CPU ms per call (client + server) through
   `baton serve --transport http` with an API key and with --no-auth, over stdio for reference,
   and the no-op tool; ratios against the no-op, in interleaved blocks.
2. 8 clients at once, each its own connection: calls/s and p50/p99 of log-interaction against
   Baton with 1 and 2 workers (API key), and of the no-op.

Prints medians and ratios; writes the figures to bench/results/http-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.client import Client
    from mcp.types import CallToolResult

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import CONTENT, PY, children, interleaved, ratio, summary  # noqa: E402 (bench/ is not a package)

NOOP = "noop (bare MCPServer, HTTP)"
BATON_KEY = "baton log-interaction, API key"
BATON_OPEN = "baton log-interaction, --no-auth"
BATON_STDIO = "baton log-interaction, stdio"


def serve_noop(port: int) -> None:
    """The floor: what the SDK alone costs per HTTP call, served as `baton serve --transport http` serves."""
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("noop")

    @server.tool(name="noop")
    async def noop() -> str:
        """Do nothing."""
        return "ok"

    app = server.streamable_http_app(stateless_http=True, json_response=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, server_header=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    with log.open("ab") as err:
        # Its own session, so that a kill reaches a --workers N server's workers too.
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                start_new_session=True)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


async def wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    """Until the server answers any HTTP request (bounded); fail if it exits."""
    import httpx2

    deadline = time.monotonic() + 60
    async with httpx2.AsyncClient(timeout=5) as http:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{url}: the server exited with {proc.returncode}")
            try:
                await http.get(url)
                return
            except httpx2.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{url}: no answer within 60 s") from None
                await asyncio.sleep(0.05)  # polling a port that is not listening yet


@asynccontextmanager
async def http_client(url: str, key: str | None) -> AsyncIterator[Client]:
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http, \
            Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy") as client:
        yield client


def checked(result: CallToolResult) -> CallToolResult:
    if result.is_error:
        raise SystemExit(f"call failed: {result.content}")
    return result


Call = Callable[["Client"], Awaitable["CallToolResult"]]


async def eight_clients(clients: list[Client], call: Call, per_client: int) -> tuple[list[float], float]:
    """Every client makes `per_client` calls, all clients at once: (latencies ms, elapsed s)."""
    samples: list[float] = []

    async def one(client: Client) -> None:
        for _ in range(per_client):
            start = time.perf_counter()
            checked(await call(client))
            samples.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(one(client) for client in clients))
    return samples, time.perf_counter() - start


async def measure(tmp: Path, n: int, per_client: int, rounds: int) -> dict[str, Any]:
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    from baton import keys
    from baton.store import Store

    db = tmp / "bench.db"
    async with await Store.open(db) as store:
        key = str((await keys.create(store, "bench", note="bench/http_transport.py"))["key"])
    log = tmp / "servers.log"
    ports = {name: free_port() for name in ("noop", "key", "open", "two")}
    baton = [PY, "-m", "baton", "serve", "--db", str(db), "--transport", "http"]
    commands = {
        "noop": [PY, __file__, "--serve-noop", str(ports["noop"])],
        "key": [*baton, "--port", str(ports["key"])],
        "open": [*baton, "--port", str(ports["open"]), "--no-auth"],
        "two": [*baton, "--port", str(ports["two"]), "--workers", "2"],
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    stdio = StdioServerParameters(command=PY, args=["-m", "baton", "serve", "--db", str(db)])
    with process(commands["noop"], log) as p1, process(commands["key"], log) as p2, \
            process(commands["open"], log) as p3, process(commands["two"], log) as p4:
        for proc, name in ((p1, "noop"), (p2, "key"), (p3, "open"), (p4, "two")):
            await wait_ready(proc, urls[name])
        async with AsyncExitStack() as stack:
            noop = await stack.enter_async_context(http_client(urls["noop"], None))
            with_key = await stack.enter_async_context(http_client(urls["key"], key))
            open_ = await stack.enter_async_context(http_client(urls["open"], None))
            over_stdio = await stack.enter_async_context(Client(stdio, mode="legacy"))
            session = checked(await with_key.call_tool("create-session", {"requirements": "bench"}))
            sid = session.structured_content["session_id"]

            def write(client: Client) -> Awaitable[CallToolResult]:
                return client.call_tool("log-interaction", {"session_id": sid, "agent_type": "developer",
                                                            "content": CONTENT})

            def noop_call(client: Client) -> Awaitable[CallToolResult]:
                return client.call_tool("noop", {})

            sequential_calls: dict[str, Callable[[], Awaitable[Any]]] = {
                NOOP: lambda: noop_call(noop),
                BATON_KEY: lambda: write(with_key),
                BATON_OPEN: lambda: write(open_),
                BATON_STDIO: lambda: write(over_stdio),
            }
            for subject in sequential_calls.values():
                for _ in range(10):  # warm-up
                    checked(await subject())
            print("sequential ...", file=sys.stderr)
            sequential = await interleaved(sequential_calls, n, pids=children())

            print("8 clients ...", file=sys.stderr)
            groups: dict[str, tuple[str, str | None, Call]] = {
                NOOP: ("noop", None, noop_call),
                "baton log-interaction, API key, 1 worker": ("key", key, write),
                "baton log-interaction, API key, 2 workers": ("two", key, write),
            }
            clients = {name: [await stack.enter_async_context(http_client(urls[server], secret)) for _ in range(8)]
                       for name, (server, secret, _) in groups.items()}
            for name, (_, _, calls) in groups.items():
                await eight_clients(clients[name], calls, 5)  # warm-up
            latencies: dict[str, list[float]] = {name: [] for name in groups}
            seconds = dict.fromkeys(groups, 0.0)
            for _ in range(rounds):  # interleaved, so outside load hits every subject alike
                for name, (_, _, calls) in groups.items():
                    got, elapsed = await eight_clients(clients[name], calls, per_client)
                    latencies[name] += got
                    seconds[name] += elapsed
            parallel = {name: {**summary(latencies[name]), "calls_per_s": round(len(latencies[name]) / seconds[name])}
                        for name in groups}
    return {"sequential": sequential, "eight_clients": parallel}


def render(report: dict[str, Any]) -> str:
    seq = report["sequential"]
    base = seq[NOOP]
    lines = [f"Baton over HTTP  {report['date']}  {report['machine']}",
             f"load average at start {report['load_average_at_start']}, at end {report['load_average_at_end']}",
             "p50/p99 in ms; cpu = CPU ms per call, client + server processes (load-robust); ratio = / no-op", "",
             "1. Sequential, one SDK client each (legacy handshake era)",
             f"   {'call':<36}{'p50':>8}{'p99':>8}{'ratio':>7}{'cpu':>7}{'ratio':>7}"]
    for name, fig in seq.items():
        lines.append(f"   {name:<36}{fig['p50_ms']:>8.2f}{fig['p99_ms']:>8.2f}"
                     f"{ratio(fig['p50_ms'], base['p50_ms']):>7.2f}"
                     f"{fig['cpu_ms']:>7.2f}{ratio(fig['cpu_ms'], base['cpu_ms']):>7.2f}")
    par = report["eight_clients"]
    lines += ["", "2. 8 SDK clients at once, one connection each (calls/s ratio = / no-op)",
              f"   {'call':<44}{'calls/s':>9}{'ratio':>7}{'p50':>8}{'p99':>8}"]
    for name, fig in par.items():
        lines.append(f"   {name:<44}{fig['calls_per_s']:>9}{ratio(fig['calls_per_s'], par[NOOP]['calls_per_s']):>7.2f}"
                     f"{fig['p50_ms']:>8.2f}{fig['p99_ms']:>8.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Small counts (a smoke run).")
    parser.add_argument("--serve-noop", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_noop is not None:
        serve_noop(args.serve_noop)
        return 0
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    began = time.perf_counter()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()} {platform.release()},"
                   f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        "command": "python bench/http_transport.py" + (" --quick" if args.quick else ""),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="baton-bench-http-") as tmp:
        report.update(asyncio.run(measure(Path(tmp), 60 if args.quick else 300, 20 if args.quick else 100,
                                          2 if args.quick else 3)))
    report["elapsed_s"] = round(time.perf_counter() - began)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(render(report))
    out = HERE / "results" / f"http-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n({report['elapsed_s']} s; figures in {out.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
