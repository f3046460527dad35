"""Shared machinery of the proof scripts: real `baton serve` processes driven by real MCP clients
over stdio, `baton` CLI processes, a write workload whose every acknowledged write is checkable,
and the verification against the SQLite file itself.

Every write carries a unique marker (`<writer>-<n>`) in a column the verification can count:
interaction and reasoning content, criterion text, the token row's model. Counter increments go
to one shared task group, so every writer contends for the same row.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

SESSION_ID = "stress-session"
GROUP_ID = "G"
KINDS = ("log-interaction", "save-reasoning", "update-task-group", "save-success-criteria", "log-tokens")
CALL_TIMEOUT_S = 120.0


def server_params(db_path: Path, *extra: str, log_level: str = "WARNING") -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "baton", "serve", "--db", str(db_path), "--log-level", log_level, *extra],
        env={"PYTHONUNBUFFERED": "1"},
    )


@asynccontextmanager
async def serve(db_path: Path, errlog: TextIO | None = None, *extra: str,
                log_level: str = "WARNING") -> AsyncIterator[Client]:
    """A real `baton serve` subprocess and an MCP client connected to it over stdio."""
    params = server_params(db_path, *extra, log_level=log_level)
    transport = stdio_client(params, errlog=errlog if errlog is not None else sys.stderr)
    async with Client(transport) as client:
        yield client


def cli_env(db_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env["BATON_DB"] = str(db_path)
    return env


async def run_cli(db_path: Path, *args: str) -> tuple[int, str, str]:
    """`python -m baton ARGS` as a real process; returns (exit code, stdout, stderr)."""
    proc = await anyio.run_process([sys.executable, "-m", "baton", *args], env=cli_env(db_path), check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def write_arguments(kind: str, marker: str, writer: str) -> dict[str, Any]:
    """The arguments of one write of `kind`, identifiable afterwards by `marker`."""
    # The marker doubles as the idempotency key, so a retry of a write whose answer was lost is safe.
    # save-success-criteria needs none: the same criterion text again adds nothing.
    base = {"session_id": SESSION_ID}
    keyed = {**base, "idempotency_key": marker}
    if kind == "log-interaction":
        return {**keyed, "agent_type": "developer", "agent_id": writer, "content": marker}
    if kind == "save-reasoning":
        return {**keyed, "agent_type": "qa_expert", "agent_id": writer, "phase": "approach", "content": marker}
    if kind == "update-task-group":
        return {**keyed, "group_id": GROUP_ID, "increment": {"qa_attempts": 1}}
    if kind == "save-success-criteria":
        return {**base, "criteria": [{"criterion": marker}]}
    if kind == "log-tokens":
        return {**keyed, "agent_type": "developer", "agent_id": writer, "input_tokens": 3, "output_tokens": 5,
                "model": marker}
    raise ValueError(kind)


@dataclass
class Tally:
    """What the clients saw: attempted and acknowledged markers per kind, latencies, errors."""

    attempted: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    acked: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    cli_latencies_ms: list[float] = field(default_factory=list)
    calls: dict[str, tuple[str, int]] = field(default_factory=dict)
    retries: int = 0

    def unanswered(self) -> list[tuple[str, int]]:
        """(writer, index) of every write attempted but never acknowledged (its outcome unknown)."""
        acked = set().union(*self.acked.values())
        return [call for marker, call in self.calls.items() if marker not in acked]

    @property
    def acked_count(self) -> int:
        return sum(len(v) for v in self.acked.values())

    @property
    def attempted_count(self) -> int:
        return sum(len(v) for v in self.attempted.values())


async def mcp_write(client: Client, tally: Tally, writer: str, index: int) -> bool:
    """One write through MCP; True when the server acknowledged it."""
    kind = KINDS[index % len(KINDS)]
    marker = f"{writer}-{index}"
    tally.attempted[kind].add(marker)
    tally.calls[marker] = (writer, index)
    started = time.perf_counter()
    with anyio.fail_after(CALL_TIMEOUT_S):
        result = await client.call_tool(kind, write_arguments(kind, marker, writer))
    elapsed = (time.perf_counter() - started) * 1000
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        tally.errors.append(f"{kind}: {text}")
        return False
    tally.latencies_ms.append(elapsed)
    tally.acked[kind].add(marker)
    return True


async def cli_write(db_path: Path, tally: Tally, writer: str, index: int) -> bool:
    kind = KINDS[index % len(KINDS)]
    marker = f"{writer}-{index}"
    tally.attempted[kind].add(marker)
    started = time.perf_counter()
    code, _, err = await run_cli(db_path, kind, "--json", json.dumps(write_arguments(kind, marker, writer)))
    elapsed = (time.perf_counter() - started) * 1000
    if code != 0:
        tally.errors.append(f"cli {kind}: exit {code}: {err.strip()[:300]}")
        return False
    tally.cli_latencies_ms.append(elapsed)
    tally.acked[kind].add(marker)
    return True


async def prepare_database(db_path: Path) -> None:
    """Create (and migrate) the database with the shared session and task group."""
    from baton.store import Store
    from baton.tools import catalog

    ops = catalog()
    async with await Store.open(db_path) as store:
        await ops["create-session"].run(store, {"session_id": SESSION_ID, "requirements": "stress"})
        await ops["create-task-group"].run(
            store, {"session_id": SESSION_ID, "group_id": GROUP_ID, "name": "shared counters"})


@dataclass
class Verdict:
    acked: int
    lost: list[str]
    duplicated: list[str]
    phantom: list[str]
    counter: int
    counter_expected_min: int
    counter_expected_max: int
    integrity: str

    @property
    def ok(self) -> bool:
        return (not self.lost and not self.duplicated and not self.phantom and self.integrity == "ok"
                and self.counter_expected_min <= self.counter <= self.counter_expected_max)


def verify(db_path: Path, tally: Tally) -> Verdict:
    """Compare what clients saw acknowledged with what the file holds.

    Lost: acknowledged but absent. Duplicated: present more than once. Phantom: present but never
    attempted. The counter must equal the acknowledged increments, plus at most the increments whose
    outcome the client never learned (a killed server may have committed before dying).
    """
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        present: dict[str, dict[str, int]] = {
            "log-interaction": dict(conn.execute(
                "SELECT content, count(*) FROM logs WHERE session_id = ? AND log_type = 'interaction'"
                " GROUP BY content", (SESSION_ID,)).fetchall()),
            "save-reasoning": dict(conn.execute(
                "SELECT content, count(*) FROM logs WHERE session_id = ? AND log_type = 'reasoning'"
                " GROUP BY content", (SESSION_ID,)).fetchall()),
            "save-success-criteria": dict(conn.execute(
                "SELECT criterion, count(*) FROM success_criteria WHERE session_id = ? GROUP BY criterion",
                (SESSION_ID,)).fetchall()),
            "log-tokens": dict(conn.execute(
                "SELECT model, count(*) FROM token_usage WHERE session_id = ? GROUP BY model",
                (SESSION_ID,)).fetchall()),
        }
        counter = int(conn.execute("SELECT qa_attempts FROM task_groups WHERE session_id = ? AND group_id = ?",
                                   (SESSION_ID, GROUP_ID)).fetchone()[0])
        integrity = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()
    lost, duplicated, phantom = [], [], []
    for kind, rows in present.items():
        lost += sorted(m for m in tally.acked[kind] if rows.get(m, 0) == 0)
        duplicated += sorted(m for m, n in rows.items() if n > 1)
        phantom += sorted(m for m in rows if m not in tally.attempted[kind])
    increments_acked = len(tally.acked["update-task-group"])
    increments_unknown = len(tally.attempted["update-task-group"]) - increments_acked
    return Verdict(
        acked=tally.acked_count, lost=lost, duplicated=duplicated, phantom=phantom, counter=counter,
        counter_expected_min=increments_acked, counter_expected_max=increments_acked + increments_unknown,
        integrity=integrity,
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


async def server_pid(client: Client) -> int:
    result = await client.call_tool("health", {})
    assert result.structured_content is not None, result.content
    return int(result.structured_content["pid"])
