"""Every hot query uses an index: no full scan of a table that grows with use.

The SQL is not copied here: each case runs a real operation through the operation table with a
trace callback on the store's connections, and every statement it executed (parameters bound, as
SQLite saw it) is checked with EXPLAIN QUERY PLAN. A new query that scans a big table fails here.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import baton.store
from baton.store import Store
from baton.tools import catalog
from tests.helpers import call

# Tables that grow with use; a plan step "SCAN <table>" reads all of it.
BIG_TABLES = ("logs", "sessions", "task_groups", "token_usage", "success_criteria", "state_snapshots",
              "idempotency_keys")
FULL_SCAN = re.compile(rf"^SCAN ({'|'.join(BIG_TABLES)})\b")
QUERY = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)


class Traced:
    def __init__(self, store: Store, statements: list[str]) -> None:
        self.store = store
        self.statements = statements

    async def run(self, name: str, **arguments: Any) -> list[str]:
        """The queries (not PRAGMAs, transaction control or trigger bodies) that one operation ran."""
        self.statements.clear()
        await call(self.store, name, **arguments)
        return [s for s in self.statements if QUERY.match(s)]


@pytest.fixture
async def traced(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Traced]:
    statements: list[str] = []
    connect = baton.store._connect

    async def traced_connect(path: Path, *, read_only: bool = False) -> Any:
        conn = await connect(path, read_only=read_only)
        await conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(baton.store, "_connect", traced_connect)
    store = await Store.open(db_path)
    try:
        await _populate(store)
        yield Traced(store, statements)
    finally:
        await store.close()


async def _populate(store: Store) -> None:
    for n, project in enumerate(("alpha", "beta", "alpha")):
        sid = f"s{n}"
        await call(store, "create-session", session_id=sid, requirements="plans", project=project)
        for g in range(3):
            await catalog()["create-task-group"].run(store, {"session_id": sid, "group_id": f"G{g}",
                                                             "name": f"group {g}"})
        await call(store, "log-interactions", session_id=sid, entries=[
            {"agent_type": ("developer", "qa_expert")[i % 2], "content": f"entry {i}", "group_id": f"G{i % 3}"}
            for i in range(20)
        ])
        await call(store, "save-reasoning", session_id=sid, agent_type="developer", phase="risks", content="r")
        await call(store, "save-event", session_id=sid, event_type="merge", payload={"ok": True})
        await call(store, "log-tokens", session_id=sid, agent_type="developer", input_tokens=10, model="m")
        await call(store, "save-state", session_id=sid, state_type="pm", state={"n": n})
        await call(store, "save-success-criteria", session_id=sid, criteria=[{"criterion": "tests pass"}])
    await call(store, "update-session-status", session_id="s1", status="completed", force=True, reason="plans")


def full_scans(db_path: Path, statements: list[str]) -> list[str]:
    """Each statement whose plan reads a whole big table, with that plan."""
    found = []
    conn = sqlite3.connect(db_path)
    try:
        for sql in statements:
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            if any(FULL_SCAN.match(step) for step in plan):
                found.append(f"{sql}\n    plan: {plan}")
    finally:
        conn.close()
    return found


CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "log-interaction": ("log-interaction", {"session_id": "s0", "agent_type": "developer", "content": "x"}),
    "log-interaction with key": ("log-interaction", {"session_id": "s0", "agent_type": "developer",
                                                     "content": "x", "idempotency_key": "k1"}),
    "log-interactions with keys": ("log-interactions", {"session_id": "s0", "entries": [
        {"agent_type": "developer", "content": "a", "idempotency_key": "b1"},
        {"agent_type": "developer", "content": "b"}]}),
    "save-reasoning": ("save-reasoning", {"session_id": "s0", "agent_type": "developer", "phase": "approach",
                                          "content": "x", "idempotency_key": "k2"}),
    "save-event": ("save-event", {"session_id": "s0", "event_type": "e", "payload": {}}),
    "get-logs": ("get-logs", {"session_id": "s0"}),
    "get-logs by log_type": ("get-logs", {"session_id": "s0", "log_type": "reasoning"}),
    "get-logs by agent_type": ("get-logs", {"session_id": "s0", "agent_type": "qa_expert"}),
    "get-logs by group_id": ("get-logs", {"session_id": "s0", "group_id": "G1"}),
    "get-logs by phase": ("get-logs", {"session_id": "s0", "phase": "risks"}),
    "get-logs after_id": ("get-logs", {"session_id": "s0", "after_id": 10, "limit": 5}),
    "get-logs by type and phase": ("get-logs", {"session_id": "s0", "log_type": "reasoning", "phase": "risks"}),
    "dashboard-snapshot": ("dashboard-snapshot", {"session_id": "s0"}),
    "token-summary": ("token-summary", {"session_id": "s0"}),
    "token-summary by model": ("token-summary", {"session_id": "s0", "by": "model"}),
    "token-summary by group": ("token-summary", {"session_id": "s0", "by": "group_id"}),
    "log-tokens": ("log-tokens", {"session_id": "s0", "agent_type": "qa_expert", "input_tokens": 5}),
    "get-task-groups": ("get-task-groups", {"session_id": "s0"}),
    "get-task-groups by status": ("get-task-groups", {"session_id": "s0", "status": "pending"}),
    "update-task-group": ("update-task-group", {"session_id": "s0", "group_id": "G1",
                                                "increment": {"qa_attempts": 1}}),
    "list-sessions": ("list-sessions", {}),
    "list-sessions by status": ("list-sessions", {"status": "active"}),
    "list-sessions by project": ("list-sessions", {"project": "alpha"}),
    "list-sessions by status and project": ("list-sessions", {"status": "active", "project": "alpha"}),
    "save-state": ("save-state", {"session_id": "s0", "state_type": "pm", "state": {"n": 9}}),
    "get-state": ("get-state", {"session_id": "s0", "state_type": "pm", "group_id": "global"}),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_hot_query_uses_an_index(traced: Traced, db_path: Path, case: str) -> None:
    """No statement of the operation reads a whole table that grows with use."""
    name, arguments = CASES[case]
    statements = await traced.run(name, **arguments)
    assert statements, f"{case}: no query was traced"
    assert full_scans(db_path, statements) == []


async def test_the_check_catches_a_full_scan(traced: Traced, db_path: Path) -> None:
    """The checker is not vacuous: a query on an unindexed column is reported."""
    statements = await traced.run("get-logs", session_id="s0")
    assert full_scans(db_path, [*statements, "SELECT * FROM logs WHERE content = 'entry 3'"]) != []
