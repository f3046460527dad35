"""dashboard-snapshot reflects every write exactly, in one consistent read; health describes the store."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from baton import __version__
from baton.errors import InvalidInput, NotFound
from baton.migrations import latest_version
from baton.store import Store
from tests.core_helpers import (  # noqa: F401 (the *_fixture names: stores start from a migrated copy)
    TIMESTAMP,
    copied_store_fixture,
    migrated_template_fixture,
    new_session,
    run,
)
from tests.helpers import call


async def _orchestrate(store: Store) -> None:
    await new_session(store, "s", project="shop", mode="parallel")
    await new_session(store, "noise")
    await run(store, "create-task-group", {"session_id": "s", "group_id": "API", "name": "API"})
    await run(store, "create-task-group", {"session_id": "s", "group_id": "UI", "name": "UI"})
    await run(store, "create-task-group", {"session_id": "s", "group_id": "DOCS", "name": "Docs"})
    await call(store, "update-task-group", session_id="s", group_id="API", status="in_progress",
               increment={"qa_attempts": 2, "revision_count": 1})
    await call(store, "update-task-group", session_id="s", group_id="UI", status="in_progress")
    await call(store, "update-task-group", session_id="s", group_id="UI", status="approved_pending_merge",
               increment={"tl_review_attempts": 1})
    for index in range(12):
        await call(store, "log-interaction", session_id="s", agent_type="developer", content=f"step {index} " * 300)
    await call(store, "log-interaction", session_id="noise", agent_type="developer", content="elsewhere")
    for phase in ("understanding", "approach", "approach", "risks"):
        await call(store, "save-reasoning", session_id="s", agent_type="pm", phase=phase, content=phase)
    await call(store, "save-event", session_id="s", event_type="merge", payload={"group": "UI"})
    await call(store, "save-success-criteria", session_id="s", criteria=[
        {"criterion": "tests pass"}, {"criterion": "docs", "required_for_completion": False}])
    await call(store, "update-success-criterion", session_id="s", criterion="tests pass", status="met")
    await call(store, "log-tokens", session_id="s", agent_type="developer", input_tokens=10, output_tokens=20,
               cache_read_tokens=300, cache_write_tokens=4)
    await call(store, "log-tokens", session_id="s", agent_type="pm", input_tokens=1)
    await call(store, "log-tokens", session_id="noise", agent_type="pm", input_tokens=1000)
    for version in range(3):
        await call(store, "save-state", session_id="s", state_type="orchestrator", state={"phase": version})
    await call(store, "save-state", session_id="s", state_type="group_status", group_id="UI", state={"x": 1})


async def test_dashboard_snapshot_reflects_every_write_exactly(store: Store) -> None:
    """Each part of the snapshot equals what the individual reads return, and the counts are exact."""
    await _orchestrate(store)
    snapshot = await call(store, "dashboard-snapshot", session_id="s", log_limit=5, max_chars=100)
    assert snapshot["session"] == await call(store, "get-session", session_id="s")
    assert snapshot["orchestrator_state"] == {"phase": 2} and snapshot["pm_state"] is None
    assert snapshot["task_groups"]["items"] == (await call(store, "get-task-groups", session_id="s"))["items"]
    assert snapshot["task_groups"]["by_status"] == {"in_progress": 1, "approved_pending_merge": 1, "pending": 1}
    api = snapshot["task_groups"]["items"][0]
    assert (api["qa_attempts"], api["revision_count"]) == (2, 1)
    assert snapshot["success_criteria"] == await call(store, "get-success-criteria", session_id="s")
    assert (snapshot["success_criteria"]["met"], snapshot["success_criteria"]["ready_for_completion"]) == (1, True)
    assert snapshot["token_summary"] == {"total": 335, "by_agent_type": {"developer": 334, "project_manager": 1}}
    everything = (await call(store, "get-logs", session_id="s", max_chars=100, limit=500))["items"]
    assert snapshot["recent_logs"] == list(reversed(everything))[:5]
    assert all(e["truncated"] and len(e["content"]) == 100 for e in everything[:12])
    assert snapshot["reasoning"] == {"understanding": 1, "approach": 2, "risks": 1}
    assert snapshot["counts"] == {"interactions": 12, "reasoning": 4, "events": 1, "token_records": 2,
                                  "state_versions": 4, "task_groups": 3}
    assert TIMESTAMP.match(snapshot["generated_at"])


async def test_dashboard_snapshot_of_a_new_session_is_empty(store: Store) -> None:
    """A session with nothing written yet has empty parts, not errors or nulls where lists belong."""
    await new_session(store, "s")
    snapshot = await call(store, "dashboard-snapshot", session_id="s")
    assert (snapshot["orchestrator_state"], snapshot["pm_state"], snapshot["task_groups"], snapshot["recent_logs"],
            snapshot["reasoning"], snapshot["token_summary"]) == (
        None, None, {"items": [], "by_status": {}}, [], {}, {"total": 0, "by_agent_type": {}})
    assert set(snapshot["counts"].values()) == {0}
    assert snapshot["success_criteria"]["total"] == 0


async def test_dashboard_snapshot_shows_latest_pm_state_and_stays_small(store: Store) -> None:
    """pm_state is the latest version; a state too big for the snapshot is replaced by a pointer to get-state."""
    await new_session(store, "s")
    await call(store, "save-state", session_id="s", state_type="pm", state={"v": 1})
    await call(store, "save-state", session_id="s", state_type="pm", state={"v": 2})
    await call(store, "save-state", session_id="s", state_type="orchestrator", state={"blob": "x" * 25_000})
    snapshot = await call(store, "dashboard-snapshot", session_id="s")
    assert snapshot["pm_state"] == {"v": 2}
    assert "get-state" in snapshot["orchestrator_state"]["_omitted"]


async def test_dashboard_snapshot_errors(store: Store) -> None:
    """An unknown session is not_found; log_limit and max_chars out of range are invalid."""
    await new_session(store, "s")
    with pytest.raises(NotFound):
        await call(store, "dashboard-snapshot", session_id="ghost")
    for arguments in ({"log_limit": 101}, {"log_limit": -1}, {"max_chars": 1}):
        with pytest.raises(InvalidInput):
            await call(store, "dashboard-snapshot", session_id="s", **arguments)


async def test_dashboard_snapshot_is_one_consistent_read(store: Store) -> None:
    """While a writer alternates interactions and token records, every snapshot sees a single moment."""
    await new_session(store, "s")
    steps = 120
    snapshots: list[dict[str, int]] = []
    done = anyio.Event()

    async def writer() -> None:
        for index in range(steps):
            await call(store, "log-interaction", session_id="s", agent_type="developer", content=f"step {index}")
            await call(store, "log-tokens", session_id="s", agent_type="developer", input_tokens=1)
        done.set()

    async def reader() -> None:
        while not done.is_set():
            snapshot = await call(store, "dashboard-snapshot", session_id="s", log_limit=1)
            newest = snapshot["recent_logs"][0]["content"] if snapshot["recent_logs"] else "step -1"
            snapshots.append({
                "interactions": snapshot["counts"]["interactions"],
                "token_records": snapshot["counts"]["token_records"],
                "token_total": snapshot["token_summary"]["total"],
                "newest": int(newest.split()[1]) + 1,
            })

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            tg.start_soon(reader)
            tg.start_soon(reader)
    assert len(snapshots) >= 5
    for seen in snapshots:
        assert seen["newest"] == seen["interactions"], seen
        assert seen["token_total"] == seen["token_records"], seen
        assert seen["interactions"] - seen["token_records"] in (0, 1), seen


async def test_health_describes_the_store(store: Store, db_path: Path) -> None:
    """health reports the resolved path, schema version, WAL mode, versions, sizes and row counts."""
    await _orchestrate(store)
    health = await call(store, "health")
    assert health["db_path"] == str(db_path) and Path(health["db_path"]).is_absolute()
    assert health["schema_version"] == latest_version()
    assert (health["journal_mode"], health["server_version"], health["pid"]) == ("wal", __version__, os.getpid())
    assert health["db_bytes"] == (await anyio.Path(db_path).stat()).st_size > 0
    wal = anyio.Path(str(db_path) + "-wal")
    assert health["wal_bytes"] == ((await wal.stat()).st_size if await wal.exists() else 0)
    assert health["counts"] == {"sessions": 2, "logs": 12 + 1 + 4 + 1, "task_groups": 3, "success_criteria": 2,
                                "token_usage": 3}
    with pytest.raises(InvalidInput):
        await call(store, "health", verbose=True)
