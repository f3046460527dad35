"""log-interactions: many interactions in one call and one transaction, with log-interaction's semantics."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from baton.errors import Conflict, InvalidInput, NotFound
from baton.store import Store
from tests.helpers import call


async def _session(store: Store) -> str:
    created = await call(store, "create-session", session_id="batch-1", requirements="log a lot")
    return str(created["session_id"])


async def _contents(store: Store, session_id: str) -> list[Any]:
    contents: list[Any] = []
    cursor = None
    while True:
        page = await call(store, "get-logs", session_id=session_id, limit=500, cursor=cursor)
        contents += [entry["content"] for entry in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return contents


async def test_entries_are_stored_in_order_with_secrets_redacted(store: Store) -> None:
    """Every entry becomes one interaction row, in entry order, redacted like log-interaction."""
    session_id = await _session(store)
    entries = [{"agent_type": "developer", "content": f"step {i}"} for i in range(300)]
    entries[7]["content"] = "token sk-ant-abcdefghijklmnopqrstuvwxyz0123 leaked"
    written = await call(store, "log-interactions", session_id=session_id, entries=entries)
    assert written["count"] == 300 and written["log_ids"] == sorted(written["log_ids"])
    assert written["redacted"] == [7] and written["idempotent"] == []
    contents = await _contents(store, session_id)
    assert contents[:3] == ["step 0", "step 1", "step 2"] and len(contents) == 300
    assert "sk-ant-" not in contents[7] and "[REDACTED]" in contents[7]
    page = await call(store, "get-logs", session_id=session_id, after_id=written["log_ids"][6], limit=1)
    assert page["items"][0]["log_id"] == written["log_ids"][7] and page["items"][0]["redacted"] is True


async def test_idempotency_keys_are_shared_with_log_interaction(store: Store) -> None:
    """A key first used by log-interaction is a replay in a batch, and the other way round."""
    session_id = await _session(store)
    single = await call(store, "log-interaction", session_id=session_id, agent_type="qa_expert",
                        content="tests pass", idempotency_key="k1")
    batch = await call(store, "log-interactions", session_id=session_id, entries=[
        {"agent_type": "qa_expert", "content": "tests pass", "idempotency_key": "k1"},
        {"agent_type": "qa_expert", "content": "new", "idempotency_key": "k2"},
        {"agent_type": "qa_expert", "content": "new", "idempotency_key": "k2"},
    ])
    assert batch["log_ids"][0] == single["log_id"] and batch["idempotent"] == [0, 2]
    assert batch["log_ids"][1] == batch["log_ids"][2]
    again = await call(store, "log-interaction", session_id=session_id, agent_type="qa_expert", content="new",
                       idempotency_key="k2")
    assert again["idempotent"] is True and again["log_id"] == batch["log_ids"][1]
    assert await _contents(store, session_id) == ["tests pass", "new"]


async def test_a_conflicting_entry_writes_nothing(store: Store) -> None:
    """A key reused with a different payload fails the whole batch; no entry is stored."""
    session_id = await _session(store)
    await call(store, "log-interaction", session_id=session_id, agent_type="developer", content="a",
               idempotency_key="k")
    with pytest.raises(Conflict, match="entry 1"):
        await call(store, "log-interactions", session_id=session_id, entries=[
            {"agent_type": "developer", "content": "fine"},
            {"agent_type": "developer", "content": "different", "idempotency_key": "k"},
        ])
    assert await _contents(store, session_id) == ["a"]


async def test_an_invalid_entry_is_named_and_nothing_is_written(store: Store) -> None:
    """Validation is per entry, like log-interaction, and names the entry."""
    session_id = await _session(store)
    with pytest.raises(InvalidInput, match=r"entries\.1\.content"):
        await call(store, "log-interactions", session_id=session_id, entries=[
            {"agent_type": "developer", "content": "ok"}, {"agent_type": "developer", "content": "  "},
        ])
    with pytest.raises(InvalidInput, match="entries"):
        await call(store, "log-interactions", session_id=session_id, entries=[])
    with pytest.raises(NotFound):
        await call(store, "log-interactions", session_id="nope", entries=[{"agent_type": "pm", "content": "x"}])
    assert await _contents(store, session_id) == []


async def test_batch_rows_are_in_the_search_index_exactly_once(store: Store, db_path: Path) -> None:
    """A batch indexes its rows with one statement (migration 0005) instead of the per-row trigger:
    afterwards every interaction is in the index exactly once, with the trigger's values, beside
    rows written one at a time, and indexing is not left paused."""
    session_id = await _session(store)
    await call(store, "log-interaction", session_id=session_id, agent_type="pm", content="single before")
    await call(store, "log-interactions", session_id=session_id, entries=[
        {"agent_type": "developer", "content": f"batched entry {i}", "group_id": "G1"} for i in range(50)])
    await call(store, "save-reasoning", session_id=session_id, agent_type="tech_lead", phase="approach",
               content="single after")
    conn = sqlite3.connect(db_path)
    try:
        logs = conn.execute("SELECT log_id * 4 + 1, content, log_type, session_id, agent_type, group_id, log_id"
                            " FROM logs ORDER BY log_id").fetchall()
        indexed = conn.execute("SELECT rowid, content, kind, session_id, agent_type, group_id, source_id"
                               " FROM search_index WHERE rowid % 4 = 1 ORDER BY rowid").fetchall()
        assert len(logs) == 52 and indexed == logs
        assert conn.execute("SELECT count(*) FROM search_index_paused").fetchone() == (0,)
    finally:
        conn.close()
    hits = await call(store, "search", query="batched entry", session_id=session_id, limit=100)
    assert len(hits["items"]) == 50
