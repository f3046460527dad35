"""Baton benchmarks against the alternatives, measured side by side in one run.

    python bench/run.py            # the full run (about 5 minutes on a 2-core machine)
    python bench/run.py --quick    # a smoke run with small counts and databases

Prints one table and writes every figure as JSON to bench/results/<UTC time>.json. Each figure
is a median (p50) with its p99 and a ratio against a baseline measured in the same run:

1. stdio: per-operation latency from a real MCP client (the SDK `Client`, handshake era) against
   a `baton serve` subprocess, sequential and with 8 calls in flight; baselines: a no-op tool on
   a bare MCPServer (bench/noop_server.py) and a raw aiosqlite insert into the same schema.
2. batch: `log-interactions` entries per second (1000 entries per call) over stdio.
3. process per operation: the `baton` CLI per operation against a `python -c` one-insert process.
4. scale: in-process per-operation latency on databases of 0 to 1M log rows and 10 or 10,000
   sessions (built with direct SQL into the real schema).
5. start-up (spawn -> first tools/list answered) and idle RSS against the bare MCPServer.
6. context cost: the size of tools/list per profile.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
BATON = str(Path(PY).with_name("baton"))
NOOP_SERVER = [PY, str(HERE / "noop_server.py")]
CONTENT = "Implemented the password reset endpoint; unit tests added for token expiry and reuse. " * 2

Samples = list[float]
BUILD_VERSION = 2  # bump when build_db changes, so cached scale databases are rebuilt


# -- statistics -------------------------------------------------------------------------------


def summary(samples_ms: Samples) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 3), "p99_ms": round(p99, 3), "n": len(ordered)}


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("nan")


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> Samples:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def in_flight(fn: Callable[[], Awaitable[Any]], n: int, width: int = 8) -> tuple[Samples, float]:
    """n calls with `width` in flight at once; returns per-call latencies and the elapsed seconds."""
    samples: Samples = []
    remaining = iter(range(n))

    async def worker() -> None:
        for _ in remaining:
            start = time.perf_counter()
            await fn()
            samples.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(width)))
    return samples, time.perf_counter() - start


# The machine may be shared: every comparison is measured in interleaved rounds (a block of calls
# of each subject per round), so a burst of outside load hits the subject and its baseline alike.


def children() -> list[int]:
    """This process's live child processes (the servers under test)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def cpu_seconds(pids: Sequence[int] = ()) -> float:
    """CPU time used so far by this process (all threads) and by the processes `pids`.

    Unlike wall time, CPU time hardly changes when other work shares the machine, so ratios of CPU
    per call are the load-robust twin of the wall-clock medians.
    """
    total = time.process_time()
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def interleaved(calls: dict[str, Callable[[], Awaitable[Any]]], n: int, block: int = 10,
                      pids: Sequence[int] = ()) -> dict[str, dict[str, Any]]:
    """Wall-clock summary per subject plus `cpu_ms`: mean CPU per call (this process and its children)."""
    samples: dict[str, Samples] = {name: [] for name in calls}
    cpu = dict.fromkeys(calls, 0.0)
    for _ in range(max(1, n // block)):
        for name, fn in calls.items():
            cpu_start = cpu_seconds(pids)
            for _ in range(block):
                start = time.perf_counter()
                await fn()
                samples[name].append((time.perf_counter() - start) * 1000)
            cpu[name] += cpu_seconds(pids) - cpu_start
    return {name: {**summary(values), "cpu_ms": round(1000 * cpu[name] / len(values), 3)}
            for name, values in samples.items()}


async def interleaved_in_flight(calls: dict[str, Callable[[], Awaitable[Any]]], n: int,
                                rounds: int = 5) -> dict[str, dict[str, Any]]:
    samples: dict[str, Samples] = {name: [] for name in calls}
    seconds = dict.fromkeys(calls, 0.0)
    for _ in range(rounds):
        for name, fn in calls.items():
            got, elapsed = await in_flight(fn, n // rounds)
            samples[name] += got
            seconds[name] += elapsed
    return {name: {**summary(samples[name]), "calls_per_s": round(len(samples[name]) / seconds[name])}
            for name in calls}


# -- 1 and 2: over stdio ----------------------------------------------------------------------


def _checked(result: Any, name: str) -> dict[str, Any]:
    if result.is_error:
        raise SystemExit(f"{name} failed: {result.content}")
    return dict(result.structured_content or {})


async def stdio_section(db: Path, n: int, n_flight: int, batches: int) -> dict[str, Any]:
    import aiosqlite
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    noop_params = StdioServerParameters(command=NOOP_SERVER[0], args=NOOP_SERVER[1:])
    params = StdioServerParameters(command=BATON, args=["serve", "--db", str(db), "--tools", "all",
                                                        "--log-level", "WARNING"])
    async with Client(noop_params, mode="legacy") as noop, Client(params, mode="legacy") as client:
        session = _checked(await client.call_tool("create-session", {"requirements": "bench"}), "create-session")
        sid = session["session_id"]
        for i in range(10):
            _checked(await client.call_tool("create-task-group", {"session_id": sid, "group_id": f"G{i}",
                                                                  "name": f"group {i}"}), "create-task-group")
        entries = [{"agent_type": "developer", "content": CONTENT} for _ in range(500)]
        _checked(await client.call_tool("log-interactions", {"session_id": sid, "entries": entries}), "batch")
        counter = iter(range(10**9))
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "noop (bare MCPServer)": lambda: noop.call_tool("noop", {}),
            "log-interaction": lambda: client.call_tool(
                "log-interaction", {"session_id": sid, "agent_type": "developer", "content": CONTENT}),
            "save-reasoning": lambda: client.call_tool(
                "save-reasoning", {"session_id": sid, "agent_type": "developer", "phase": "approach",
                                   "content": CONTENT, "group_id": "G1"}),
            "update-task-group": lambda: client.call_tool(
                "update-task-group", {"session_id": sid, "group_id": "G2", "assigned_to": f"dev_{next(counter)}",
                                      "increment": {"qa_attempts": 1}}),
            "dashboard-snapshot": lambda: client.call_tool("dashboard-snapshot", {"session_id": sid}),
        }
        for name, call in calls.items():
            _checked(await call(), name)
            await timed(call, 10)  # warm-up
        flight = await interleaved_in_flight(calls, n_flight)

        conn = await aiosqlite.connect(db, isolation_level=None)
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA busy_timeout = 5000")

        async def raw_insert() -> None:
            """The storage floor: one committed insert into the real logs table, as the store does it."""
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute(
                "INSERT INTO logs (session_id, log_type, agent_type, content, content_length, timestamp)"
                " VALUES (?, 'interaction', 'developer', ?, ?, '2026-01-01T00:00:00.000Z')",
                (sid, CONTENT, len(CONTENT)),
            )
            await conn.execute("COMMIT")

        try:
            await timed(raw_insert, 10)
            sequential = await interleaved({**calls, "raw aiosqlite insert": raw_insert}, n, pids=children())
        finally:
            await conn.close()
        out: dict[str, Any] = {name: {"sequential": figures} for name, figures in sequential.items()}
        for name, figures in flight.items():
            out[name]["in_flight_8"] = figures

        batch = [{"agent_type": "developer", "content": CONTENT} for _ in range(1000)]
        batch_call = functools.partial(client.call_tool, "log-interactions", {"session_id": sid, "entries": batch})
        _checked(await batch_call(), "log-interactions")
        samples = await timed(batch_call, batches)
        out["log-interactions x1000"] = {"sequential": summary(samples),
                                         "entries_per_s": round(1000 * batches / (sum(samples) / 1000))}
    out["batch breakdown"] = await batch_breakdown(db, sid, batches)
    return out


async def batch_breakdown(db: Path, session_id: str, n: int) -> dict[str, Any]:
    """Where a 1000-entry batch goes: the operation in process, its redaction, and the storage floor
    (the raw inserts plus their search indexing, both ways) - ms per 1000 entries."""
    import aiosqlite

    from baton.redact import redact
    from baton.store import Store
    from baton.tools import catalog
    from baton.tools.logs import INDEX_LOGS_AFTER

    entries = [{"agent_type": "developer", "content": CONTENT} for _ in range(1000)]
    rows = [(session_id, CONTENT, len(CONTENT)) for _ in range(1000)]
    operation = catalog()["log-interactions"]
    async with await Store.open(db) as store:
        conn = await aiosqlite.connect(db, isolation_level=None)
        await conn.execute("PRAGMA synchronous = NORMAL")

        insert = ("INSERT INTO logs (session_id, log_type, agent_type, content, content_length, timestamp)"
                  " VALUES (?, 'interaction', 'developer', ?, ?, '2026-01-01T00:00:00.000Z')")

        async def insert_many() -> None:
            """What any batch must do: insert the rows and index them for search, in one transaction,
            the way log-interactions indexes (per-row trigger paused, then one statement for the batch)."""
            await conn.execute("BEGIN IMMEDIATE")
            (before,) = next(iter(await conn.execute_fetchall("SELECT coalesce(max(log_id), 0) FROM logs")))
            await conn.execute("INSERT INTO search_index_paused (paused) VALUES (1)")
            await conn.executemany(insert, rows)
            await conn.execute("DELETE FROM search_index_paused")
            await conn.execute(INDEX_LOGS_AFTER, (before,))
            await conn.execute("COMMIT")

        async def insert_many_row_trigger() -> None:
            """The same rows indexed by the per-row insert trigger (what migration 0005 lets a batch avoid)."""
            await conn.execute("BEGIN IMMEDIATE")
            await conn.executemany(insert, rows)
            await conn.execute("COMMIT")

        async def redact_all() -> None:
            for entry in entries:
                redact(entry["content"])

        try:
            parts = await interleaved({
                "in_process": lambda: operation.run(store, {"session_id": session_id, "entries": entries}),
                "redaction": redact_all,
                "raw_executemany_floor": insert_many,
                "raw_executemany_row_trigger": insert_many_row_trigger,
            }, n, block=1)
            triggers = [r[0] for r in await conn.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'logs'")]
        finally:
            await conn.close()
    return {**parts, "logs_triggers": triggers}


# -- 3: one process per operation -------------------------------------------------------------


def process_section(db: Path, n: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    created = subprocess.run([BATON, "create-session", "--db", str(db), "--requirements", "cli bench"],
                             capture_output=True, text=True, check=True, env=env)
    sid = json.loads(created.stdout)["session_id"]
    floor_code = (
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA busy_timeout=5000');"
        " c.execute(\"INSERT INTO logs (session_id, log_type, agent_type, content, content_length, timestamp)"
        " VALUES (?, 'interaction', 'developer', ?, 1, '2026-01-01T00:00:00.000Z')\", (sys.argv[2], sys.argv[3]));"
        " c.commit()"
    )
    commands = {
        "python -c one sqlite insert": [PY, "-c", floor_code, str(db), sid, CONTENT],
        "python -c import pydantic, aiosqlite, anyio": [PY, "-c", "import pydantic, aiosqlite, anyio, pydantic.main"],
        "baton log-interaction (CLI)": [BATON, "log-interaction", "--db", str(db), "--session-id", sid,
                                        "--agent-type", "developer", "--content", CONTENT],
        "baton get-logs (CLI)": [BATON, "get-logs", "--db", str(db), "--session-id", sid, "--limit", "5"],
    }
    samples: dict[str, Samples] = {name: [] for name in commands}
    cpu: dict[str, Samples] = {name: [] for name in commands}
    for cmd in commands.values():
        subprocess.run(cmd, capture_output=True, check=True, env=env)  # warm the page cache
    for _ in range(n):
        for name, cmd in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, env=env)
            samples[name].append((time.perf_counter() - start) * 1000)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(1000 * (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
    out: dict[str, Any] = {name: {**summary(values), "cpu_ms": round(statistics.median(cpu[name]), 1)}
                           for name, values in samples.items()}
    out["import_profile_ms"] = import_profile([BATON, "get-logs", "--db", str(db), "--session-id", sid], env)
    return out


def import_profile(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Import time (ms, self time summed per top-level package) of one CLI run (python -X importtime)."""
    proc = subprocess.run([PY, "-X", "importtime", *cmd], capture_output=True, text=True, check=True, env=env)
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        if own.strip().isdigit():
            package = name.strip().split(".")[0]
            totals[package] = totals.get(package, 0) + int(own) / 1000
    return {k: round(v, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:8]}


# -- 4: scale ---------------------------------------------------------------------------------


def build_db(path: Path, log_rows: int, sessions: int) -> float:
    """A database in the real schema: a probe session with 500 logs, 10 groups and 50 token records
    (what every measured operation reads or writes), plus `log_rows` logs spread over `sessions - 1`
    other sessions, with groups and token records in proportion."""
    import anyio

    from baton.store import Store

    async def migrate() -> None:
        store = await Store.open(path)
        await store.close()

    start = time.perf_counter()
    anyio.run(migrate)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    # Triggers on logs (the full-text index) cost ~10x the insert itself; load without them, then put
    # them back so the measured writes pay for them. The filler rows are not in the search index.
    triggers = [row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'"
                                               " AND tbl_name = 'logs'")]
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'logs'"
                                ).fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    now = "2026-01-01T00:00:00.000Z"
    conn.executemany(
        "INSERT INTO sessions (session_id, project, status, requirements, created_at, updated_at)"
        " VALUES (?, ?, ?, 'filler', ?, ?)",
        ((f"s{i:06d}", f"project{i % 50}", ("active", "completed")[i % 2], now, now) for i in range(sessions - 1)),
    )
    conn.execute("INSERT INTO sessions (session_id, project, requirements, created_at, updated_at)"
                 " VALUES ('probe', 'probe', 'bench', ?, ?)", (now, now))
    agents = ("developer", "qa_expert", "tech_lead", "project_manager")
    phases = ("understanding", "approach", "decisions", "risks")
    filler = log_rows
    rows = (
        (f"s{i % (sessions - 1):06d}", "interaction" if i % 4 else "reasoning", agents[i % 4], f"G{i % 10}",
         None if i % 4 else phases[i % 16 // 4], f"filler {i}", 12, now)
        for i in range(filler)
    )
    probe = (("probe", "interaction" if i % 4 else "reasoning", agents[i % 4], f"G{i % 10}",
              None if i % 4 else phases[i % 16 // 4], CONTENT, len(CONTENT), now) for i in range(500))
    conn.executemany(
        "INSERT INTO logs (session_id, log_type, agent_type, group_id, phase, content, content_length, timestamp)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (*rows, *probe) if filler else probe,
    )
    conn.executemany(
        "INSERT INTO task_groups (session_id, group_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        [("probe", f"G{i}", f"group {i}", now, now) for i in range(10)]
        + [(f"s{i % (sessions - 1):06d}", f"G{i}", "filler", now, now) for i in range(min(log_rows // 10, 100_000))],
    )
    conn.executemany(
        "INSERT INTO token_usage (session_id, agent_type, input_tokens, timestamp) VALUES (?, ?, ?, ?)",
        [(f"s{i % (sessions - 1):06d}", agents[i % 4], 1000, now) for i in range(log_rows // 10)]
        + [("probe", agents[i % 4], 1000, now) for i in range(50)],
    )
    for sql in triggers:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - start


def pinned_to_one_core(section: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run an in-process section with this thread, and the store threads it starts, on one core.

    Unpinned, each database's median came out at one of two levels (e.g. 0.3 or 0.7 ms for the same
    update), unrelated to its size and different from run to run: aiosqlite hands every statement
    to a thread, and where the scheduler put each store's threads decided the cost of those hops.
    Pinned, the medians are steady, so the ratios across database sizes measure the databases.
    """
    if not hasattr(os, "sched_setaffinity"):
        return section()
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        return section()
    finally:
        os.sched_setaffinity(0, before)


def scale_section(cache: Path, sizes: list[int], session_counts: list[int], n: int) -> dict[str, Any]:
    import anyio

    from baton.store import Store
    from baton.tools import catalog

    ops = catalog()
    probes: dict[str, dict[str, Any]] = {
        "log-interaction": {"session_id": "probe", "agent_type": "developer", "content": CONTENT},
        "save-reasoning": {"session_id": "probe", "agent_type": "developer", "phase": "risks", "content": CONTENT},
        "update-task-group": {"session_id": "probe", "group_id": "G3", "increment": {"qa_attempts": 1}},
        "dashboard-snapshot": {"session_id": "probe"},
        "get-logs": {"session_id": "probe", "agent_type": "qa_expert", "limit": 20},
        "list-sessions": {"status": "active", "limit": 5},  # the smallest db has 6 active sessions
        "token-summary": {"session_id": "probe"},
    }
    # Cached databases are named by a digest of the schema files, so a new migration means a rebuild.
    import hashlib

    schema = hashlib.sha256(b"".join(f.read_bytes() for f in sorted((ROOT / "src/baton/schema").glob("*.sql"))))
    schema.update(f"build {BUILD_VERSION}".encode())
    tag = schema.hexdigest()[:10]
    for stale in cache.glob("scale-*"):
        if tag not in stale.name:
            stale.unlink()
    paths: dict[str, Path] = {}
    built: dict[str, float | None] = {}
    for sessions in session_counts:
        for rows in sizes:
            label = f"{rows} logs / {sessions} sessions"
            paths[label] = cache / f"scale-{rows}-{sessions}-{tag}.db"
            built[label] = None if paths[label].exists() else round(build_db(paths[label], rows, sessions), 1)
            print(f"  scale: {label} ready", file=sys.stderr)

    async def measure() -> dict[str, dict[str, Any]]:
        from contextlib import AsyncExitStack

        async with AsyncExitStack() as stack:
            stores = {label: await stack.enter_async_context(await Store.open(path)) for label, path in paths.items()}
            figures: dict[str, dict[str, Any]] = {label: {"build_s": built[label]} for label in paths}
            for name, args in probes.items():
                op = ops[name]
                calls: dict[str, Callable[[], Awaitable[Any]]] = {
                    label: functools.partial(op.run, store, args) for label, store in stores.items()
                }
                for call in calls.values():
                    await timed(call, 10)
                for label, summarised in (await interleaved(calls, n)).items():
                    figures[label][name] = summarised
            return figures

    return anyio.run(measure)


# -- 5: start-up and RSS ----------------------------------------------------------------------


def _rpc(proc: subprocess.Popen[str], message: dict[str, Any]) -> dict[str, Any] | None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()
    if "id" not in message:
        return None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"server exited during start-up: {message['method']}")
        reply: dict[str, Any] = json.loads(line)
        if reply.get("id") == message["id"]:
            return reply


def startup_once(cmd: list[str]) -> tuple[float, int, float]:
    """Spawn -> initialize -> tools/list answered, in ms; then idle RSS (kB) and the CPU ms it took."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}})
        _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        listed = _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        elapsed = (time.perf_counter() - start) * 1000
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu_ms = 1000 * (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        assert listed is not None
        time.sleep(0.3)  # let start-up garbage settle before reading the idle footprint
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
        return elapsed, rss, cpu_ms
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def startup_section(db: Path, n: int) -> dict[str, Any]:
    commands = {
        "noop (bare MCPServer)": NOOP_SERVER,
        "baton serve (core)": [BATON, "serve", "--db", str(db), "--log-level", "WARNING"],
    }
    runs: dict[str, list[tuple[float, int, float]]] = {name: [] for name in commands}
    for cmd in commands.values():
        startup_once(cmd)  # warm the page cache
    for _ in range(n):
        for name, cmd in commands.items():
            runs[name].append(startup_once(cmd))
    return {name: {**summary([r[0] for r in got]), "rss_kb": int(statistics.median(r[1] for r in got)),
                   "cpu_ms": round(statistics.median(r[2] for r in got))}
            for name, got in runs.items()}


# -- 6: context cost --------------------------------------------------------------------------


def context_section(db: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for profile in ("core", "all"):
        cmd = [BATON, "serve", "--db", str(db), "--tools", profile, "--log-level", "WARNING"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        try:
            _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"}}})
            _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            listed = _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)
        assert listed is not None
        tools = listed["result"]["tools"]
        sizes = {t["name"]: len(json.dumps(t, separators=(",", ":"))) for t in tools}
        chars = len(json.dumps(tools, separators=(",", ":")))
        out[profile] = {"tools": len(tools), "chars": chars, "tokens_approx": chars // 4,
                        "heaviest": dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:5])}
    return out


# -- the table --------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    lines = [f"Baton benchmarks  {report['date']}  {report['machine']}",
             f"load average at start {report['load_average_at_start']}, at end {report['load_average_at_end']}",
             "Wall-clock figures are medians (p50) and p99 in ms. 'cpu' is CPU ms per call (client + server"
             " processes), which outside load hardly changes: on a busy machine, trust the cpu ratios.", ""]
    stdio = report["stdio"]
    noop = stdio["noop (bare MCPServer)"]
    lines.append("1. Per operation over stdio (ratio = subject / no-op tool; goal for log-interaction p50 <= 1.25)")
    lines.append(f"   {'call':<26}{'p50':>8}{'p99':>8}{'ratio':>7}{'cpu':>7}{'ratio':>7}"
                 f"{'8 in flight p50':>17}{'p99':>8}{'calls/s':>9}{'ratio':>7}")
    for name, fig in stdio.items():
        if "sequential" not in fig or name == "log-interactions x1000":
            continue
        seq = fig["sequential"]
        base = noop["sequential"]
        row = (f"   {name:<26}{seq['p50_ms']:>8.2f}{seq['p99_ms']:>8.2f}{ratio(seq['p50_ms'], base['p50_ms']):>7.2f}"
               f"{seq['cpu_ms']:>7.2f}{ratio(seq['cpu_ms'], base['cpu_ms']):>7.2f}")
        flight = fig.get("in_flight_8")
        if flight:
            row += (f"{flight['p50_ms']:>17.2f}{flight['p99_ms']:>8.2f}{flight['calls_per_s']:>9}"
                    f"{ratio(flight['p50_ms'], noop['in_flight_8']['p50_ms']):>7.2f}")
        lines.append(row)
    raw = stdio["raw aiosqlite insert"]["sequential"]
    floor = noop["sequential"]["p50_ms"] + raw["p50_ms"]
    floor_cpu = noop["sequential"]["cpu_ms"] + raw["cpu_ms"]
    floor_ratio = ratio(floor, noop["sequential"]["p50_ms"])
    lines.append(f"   {'floor: no-op + raw insert':<26}{floor:>8.2f}{'':>8}{floor_ratio:>7.2f}"
                 f"{floor_cpu:>7.2f}{ratio(floor_cpu, noop['sequential']['cpu_ms']):>7.2f}"
                 "   (the least a stdio write can cost on this SDK with aiosqlite)")
    batch = stdio["log-interactions x1000"]
    parts = stdio["batch breakdown"]
    lines += ["", f"2. Batch: log-interactions, 1000 entries per call: {batch['entries_per_s']} entries/s over stdio"
                  f" (goal >= 20000); in process {round(1_000_000 / parts['in_process']['p50_ms'])}/s",
              f"   per 1000 entries, p50 ms (cpu ms): over stdio {batch['sequential']['p50_ms']:.0f};"
              f" in process {parts['in_process']['p50_ms']:.0f} ({parts['in_process']['cpu_ms']:.0f}),"
              f" of which redaction {parts['redaction']['p50_ms']:.0f} ({parts['redaction']['cpu_ms']:.0f});"
              f" storage floor (raw executemany + one search-index statement, one transaction)"
              f" {parts['raw_executemany_floor']['p50_ms']:.0f} ({parts['raw_executemany_floor']['cpu_ms']:.0f});"
              f" the same rows indexed by the per-row trigger instead"
              f" {parts['raw_executemany_row_trigger']['p50_ms']:.0f}"
              f" ({parts['raw_executemany_row_trigger']['cpu_ms']:.0f})"]
    proc = report["process"]
    base_proc = proc["python -c one sqlite insert"]
    lines += ["", "3. One process per operation (ratio = subject / python -c one-insert; goal <= 2)",
              f"   {'command':<46}{'p50':>8}{'p99':>8}{'ratio':>7}{'cpu':>8}{'ratio':>7}"]
    for name, fig in proc.items():
        if name != "import_profile_ms":
            lines.append(f"   {name:<46}{fig['p50_ms']:>8.0f}{fig['p99_ms']:>8.0f}"
                         f"{ratio(fig['p50_ms'], base_proc['p50_ms']):>7.2f}{fig['cpu_ms']:>8.0f}"
                         f"{ratio(fig['cpu_ms'], base_proc['cpu_ms']):>7.2f}")
    lines.append(f"   import time of one CLI run by package (self ms, -X importtime): {proc['import_profile_ms']}")
    scale = report["scale"]
    keys = list(scale)
    lines += ["", "4. Scale, in process, pinned to one core: p50 ms / cpu ms per call on a session with 500 logs"
                  " and 10 groups, in a database with N other logs / M sessions; ratio = largest / smallest db"
                  " (goal <= 1.2)"]
    lines.append(f"   {'operation':<19}" + "".join(f"{k.replace(' logs / ', '/').replace(' sessions', ''):>14}"
                                                  for k in keys) + f"{'ratio':>7}{'cpu':>6}")
    for op in scale[keys[0]]:
        if op == "build_s":
            continue
        wall = [scale[k][op]["p50_ms"] for k in keys]
        cpu = [scale[k][op]["cpu_ms"] for k in keys]
        lines.append(f"   {op:<19}" + "".join(f"{w:>8.2f}/{c:<5.2f}" for w, c in zip(wall, cpu, strict=True))
                     + f"{ratio(wall[-1], wall[0]):>7.2f}{ratio(cpu[-1], cpu[0]):>6.2f}")
    start = report["startup"]
    base = start["noop (bare MCPServer)"]
    lines += ["", "5. Start-up, spawn -> tools/list answered, and idle RSS (ratio = subject / bare MCPServer;"
                  " goal <= 1.15)"]
    for name, fig in start.items():
        lines.append(f"   {name:<24}{fig['p50_ms']:>7.0f} ms{ratio(fig['p50_ms'], base['p50_ms']):>6.2f}"
                     f"{fig['cpu_ms']:>7.0f} cpu ms{ratio(fig['cpu_ms'], base['cpu_ms']):>6.2f}"
                     f"{fig['rss_kb'] / 1024:>7.1f} MB{ratio(fig['rss_kb'], base['rss_kb']):>6.2f}")
    lines += ["", "6. Context cost of tools/list (compact JSON; tokens ~ chars/4; goal core <= 6000, all <= 16000)"]
    for profile, fig in report["context"].items():
        lines.append(f"   {profile:<6}{fig['tools']:>4} tools{fig['chars']:>8} chars{fig['tokens_approx']:>7} tokens"
                     f"   heaviest: {fig['heaviest']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Small counts and databases (a smoke run).")
    parser.add_argument("--cache", type=Path, default=HERE / "results" / "dbs",
                        help="Where the scale databases are kept between runs (rebuilt when missing).")
    args = parser.parse_args()
    quick = args.quick
    sizes = [0, 10_000] if quick else [0, 10_000, 100_000, 1_000_000]
    session_counts = [10, 1000] if quick else [10, 10_000]
    args.cache.mkdir(parents=True, exist_ok=True)
    # Measure what users get: bytecode cached after the first run (some sandboxes disable that).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    began = time.perf_counter()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()} {platform.release()},"
                   f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        "command": "python bench/run.py" + (" --quick" if quick else ""),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        print("stdio ...", file=sys.stderr)
        report["stdio"] = asyncio.run(stdio_section(tmpdir / "stdio.db", 60 if quick else 300,
                                                    80 if quick else 400, 5 if quick else 20))
        print("process per operation ...", file=sys.stderr)
        report["process"] = process_section(tmpdir / "stdio.db", 5 if quick else 20)
        print("start-up ...", file=sys.stderr)
        report["startup"] = startup_section(tmpdir / "startup.db", 3 if quick else 21)
        report["context"] = context_section(tmpdir / "startup.db")
        print("scale ...", file=sys.stderr)
        report["scale"] = pinned_to_one_core(
            lambda: scale_section(args.cache, sizes, session_counts, 30 if quick else 200))
    report["elapsed_s"] = round(time.perf_counter() - began)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    table = render(report)
    print(table)
    out = HERE / "results" / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n({report['elapsed_s']} s; figures in {out.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
