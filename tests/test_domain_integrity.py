"""Domain integrity: task-group dependencies, gated completion, what a finished session accepts, upserts;
and the end to end: groups with dependencies, attempts to break them, early completion, three databases merged."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from baton.errors import Conflict, InvalidInput, InvalidTransition
from baton.store import Store
from baton.tools import catalog
from tests.core_helpers import (  # noqa: F401 (the *_fixture names: stores start from a migrated copy)
    MODES,
    Mode,
    connected,
    copied_store_fixture,
    error_code,
    migrated_template_fixture,
    new_session,
    ok,
    result_text,
    run,
    unchanged,
)
from tests.helpers import call
from tests.test_transfer_cli import main_json


async def _group(store: Store, group_id: str, session_id: str = "s", **fields: Any) -> dict[str, Any]:
    return await run(store, "create-task-group", {"session_id": session_id, "group_id": group_id,
                                                  "name": f"group {group_id}", **fields})


async def _update(store: Store, group_id: str, session_id: str = "s", **fields: Any) -> dict[str, Any]:
    return await run(store, "update-task-group", {"session_id": session_id, "group_id": group_id, **fields})


async def _finish(store: Store, group_id: str) -> None:
    await _update(store, group_id, status="in_progress")
    await _update(store, group_id, status="completed")


# -- task-group dependencies ------------------------------------------------------------------------


async def test_a_dependency_on_an_unknown_group_is_invalid(store: Store, db_path: Path) -> None:
    """create and update refuse depends_on naming a group the session does not have, writing nothing."""
    await new_session(store, "s")
    await _group(store, "A")
    with unchanged(db_path), pytest.raises(InvalidInput, match="no task group GHOST in session 's'"):
        await _group(store, "B", depends_on=["A", "GHOST"])
    with unchanged(db_path), pytest.raises(InvalidInput, match="no task group GHOST"):
        await _update(store, "A", depends_on=["GHOST"])


async def test_a_group_depending_on_itself_is_invalid(store: Store, db_path: Path) -> None:
    """Self-dependency is the shortest cycle, named as such, on create and on update."""
    await new_session(store, "s")
    with unchanged(db_path), pytest.raises(InvalidInput, match="A would depend on itself: A -> A"):
        await _group(store, "A", depends_on=["A"])
    await _group(store, "A")
    with unchanged(db_path), pytest.raises(InvalidInput, match="A -> A"):
        await _update(store, "A", depends_on=["A"])


async def test_an_update_that_closes_a_cycle_is_invalid_and_names_it(store: Store, db_path: Path) -> None:
    """X <-> Y and a longer loop are refused with the cycle spelled out; the shortest one is named."""
    await new_session(store, "s")
    await _group(store, "X")
    await _group(store, "Y", depends_on=["X"])
    await _group(store, "Z", depends_on=["Y"])
    with unchanged(db_path), pytest.raises(InvalidInput, match="X -> Y -> X"):
        await _update(store, "X", depends_on=["Y"])
    with unchanged(db_path), pytest.raises(InvalidInput, match="X -> Y -> X"):
        await _update(store, "X", depends_on=["Z", "Y"])
    with unchanged(db_path), pytest.raises(InvalidInput, match="X -> Z -> Y -> X"):
        await _update(store, "X", depends_on=["Z"])


async def test_a_dependency_listed_twice_is_invalid(store: Store, db_path: Path) -> None:
    await new_session(store, "s")
    await _group(store, "A")
    with unchanged(db_path), pytest.raises(InvalidInput, match="lists A more than once"):
        await _group(store, "B", depends_on=["A", "A"])


async def test_update_task_group_changes_depends_on(store: Store) -> None:
    """depends_on can be changed after creation (it was `unknown parameter 'depends_on'`), also to none."""
    await new_session(store, "s")
    await _group(store, "A")
    await _group(store, "B")
    assert (await _update(store, "B", depends_on=["A"]))["depends_on"] == ["A"]
    assert (await _update(store, "B", depends_on=[]))["depends_on"] == []


async def test_starting_before_the_dependencies_are_completed_is_refused(store: Store, db_path: Path) -> None:
    """in_progress is refused naming each unfinished dependency and its status; approved_pending_merge is not done."""
    await new_session(store, "s")
    await _group(store, "API")
    await _group(store, "DB")
    await _update(store, "DB", status="in_progress")
    await _update(store, "DB", status="approved_pending_merge")
    await _group(store, "UI", depends_on=["API", "DB"])
    with unchanged(db_path), pytest.raises(InvalidTransition) as refused:
        await _update(store, "UI", status="in_progress", assigned_to="developer_1")
    assert "API (pending), DB (approved_pending_merge), not completed" in str(refused.value)
    await _finish(store, "API")
    await _update(store, "DB", status="completed")
    assert (await _update(store, "UI", status="in_progress"))["forced_start"] is None


async def test_a_group_cannot_be_created_already_started_past_its_dependencies(store: Store, db_path: Path) -> None:
    """Creating a group in_progress (or later) with unfinished dependencies is refused; pending is fine."""
    await new_session(store, "s")
    await _group(store, "A")
    with unchanged(db_path), pytest.raises(InvalidTransition, match=r"A \(pending\)"):
        await _group(store, "B", depends_on=["A"], status="in_progress")
    assert (await _group(store, "B", depends_on=["A"]))["status"] == "pending"


async def test_a_forced_start_is_recorded_and_shown_in_the_dashboard(store: Store) -> None:
    """force=true starts the group anyway; forced_start keeps when and what was blocking."""
    await new_session(store, "s")
    await _group(store, "A")
    await _group(store, "B", depends_on=["A"])
    started = await _update(store, "B", status="in_progress", force=True)
    assert started["status"] == "in_progress"
    assert started["forced_start"]["blocking"] == {"A": "pending"} and started["forced_start"]["at"]
    snapshot = await call(store, "dashboard-snapshot", session_id="s")
    (shown,) = [g for g in snapshot["task_groups"]["items"] if g["group_id"] == "B"]
    assert shown["forced_start"] == started["forced_start"]


async def test_spawn_batch_offers_only_groups_whose_dependencies_are_completed(store: Store) -> None:
    """route's spawn_batch and update-task-group agree on what is done (completed only)."""
    await new_session(store, "s")
    await _group(store, "A")
    await _group(store, "B")
    await _update(store, "B", status="in_progress")
    await _update(store, "B", status="approved_pending_merge")
    await _group(store, "NEEDS_A", depends_on=["A"])
    await _group(store, "NEEDS_B", depends_on=["B"])
    await _group(store, "FREE")
    batch = await call(store, "route", session_id="s", agent_type="project_manager",
                       response_status="PLANNING_COMPLETE")
    assert [g["group_id"] for g in batch["groups"]] == ["A", "FREE"]
    await _update(store, "B", status="completed")
    batch = await call(store, "route", session_id="s", agent_type="project_manager",
                       response_status="PLANNING_COMPLETE")
    assert [g["group_id"] for g in batch["groups"]] == ["A", "NEEDS_B", "FREE"]


# -- completion is gated by the success criteria -----------------------------------------------------


async def test_completion_with_unmet_required_criteria_is_refused_listing_them(store: Store, db_path: Path) -> None:
    """invalid_transition names each unmet required criterion and its status; an optional one does not block."""
    await new_session(store, "s")
    await call(store, "save-success-criteria", session_id="s", criteria=[
        {"criterion": "tests pass"}, {"criterion": "docs updated"},
        {"criterion": "nice to have", "required_for_completion": False}])
    await call(store, "update-success-criterion", session_id="s", criterion="docs updated", status="blocked")
    with unchanged(db_path), pytest.raises(InvalidTransition) as refused:
        await call(store, "update-session-status", session_id="s", status="completed")
    message = str(refused.value)
    assert "2 required success criteria are not met: 'tests pass' (pending); 'docs updated' (blocked)" in message
    assert "nice to have" not in message and "force=true" in message
    for criterion in ("tests pass", "docs updated"):
        await call(store, "update-success-criterion", session_id="s", criterion=criterion, status="met")
    done = await call(store, "update-session-status", session_id="s", status="completed")
    assert done["status"] == "completed" and done["completion_forced"] is False


async def test_a_session_without_criteria_cannot_complete_unforced(store: Store, db_path: Path) -> None:
    """ready_for_completion needs at least one criterion; failing or cancelling needs none."""
    await new_session(store, "s")
    with unchanged(db_path), pytest.raises(InvalidTransition, match="has no success criteria"):
        await call(store, "update-session-status", session_id="s", status="completed")
    await new_session(store, "t")
    assert (await call(store, "update-session-status", session_id="t", status="failed"))["status"] == "failed"


async def test_a_refusal_lists_ten_unmet_criteria_and_counts_the_rest(store: Store) -> None:
    await new_session(store, "s")
    await call(store, "save-success-criteria", session_id="s", criteria=[{"criterion": f"c{i}"} for i in range(25)])
    with pytest.raises(InvalidTransition, match=r"25 required success criteria .*'c9' \(pending\); and 15 more"):
        await call(store, "update-session-status", session_id="s", status="completed")


async def test_forcing_completion_needs_a_reason(store: Store, db_path: Path) -> None:
    await new_session(store, "s")
    for reason in ({}, {"reason": "  "}):
        with unchanged(db_path), pytest.raises(InvalidInput, match="force needs a reason"):
            await call(store, "update-session-status", session_id="s", status="completed", force=True, **reason)


async def test_a_forced_completion_is_recorded_with_its_reason_and_shown(store: Store) -> None:
    """completion_forced and status_reason are on the session, in get-session and the dashboard's session."""
    await new_session(store, "s")
    await call(store, "save-success-criteria", session_id="s", criteria=[{"criterion": "tests pass"}])
    done = await call(store, "update-session-status", session_id="s", status="completed", force=True,
                      reason="the user accepted it with failing tests")
    assert (done["status"], done["completion_forced"], done["status_reason"]) == (
        "completed", True, "the user accepted it with failing tests")
    snapshot = await call(store, "dashboard-snapshot", session_id="s")
    assert snapshot["session"] == await call(store, "get-session", session_id="s") == done
    assert snapshot["success_criteria"]["ready_for_completion"] is False


# -- what a finished session accepts -----------------------------------------------------------------

# Every write that names a session, and whether a completed session still takes it (history) or refuses it.
KEPT: dict[str, dict[str, Any]] = {
    "log-interaction": {"agent_type": "developer", "content": "late"},
    "log-interactions": {"entries": [{"agent_type": "developer", "content": "late"}]},
    "save-reasoning": {"agent_type": "developer", "phase": "completion", "content": "late"},
    "save-event": {"event_type": "late", "payload": {"x": 1}},
    "log-tokens": {"agent_type": "developer", "input_tokens": 5},
    "save-error-pattern": {"error_message": "boom"},  # project learning: not the session's state
    "save-strategy": {"topic": "t", "insight": "i"},
    "update-error-confidence": {"error_message": "boom", "outcome": "success"},
}
REFUSED: dict[str, dict[str, Any]] = {
    "create-task-group": {"group_id": "NEW", "name": "new"},
    "update-task-group": {"group_id": "A", "assigned_to": "developer_2"},
    "save-success-criteria": {"criteria": [{"criterion": "a new one"}]},
    "update-success-criterion": {"criterion": "done", "status": "failed"},
    "save-state": {"state_type": "pm", "state": {"late": True}},
    "save-context-package": {"package_type": "handoff", "producer": "developer", "consumers": ["qa_expert"],
                             "summary": "late", "content": "notes"},
    "mark-context-consumed": {"package_id": 1, "agent_type": "tech_lead"},
    "save-consumption": {"package_id": 1, "agent_type": "tech_lead", "iteration": 1},
    "save-skill-output": {"skill_name": "lint", "output": {"ok": True}},
    "save-development-plan": {"plan_text": "late plan", "phases": [{"name": "p"}]},
    "update-plan-phase": {"phase_number": 1, "status": "completed"},
    "route": {"agent_type": "developer", "response_status": "READY_FOR_QA", "group_id": "A"},
    "update-session-status": {"status": "active"},
}


async def _completed_session(store: Store) -> None:
    await new_session(store, "s", project="shop")
    await _group(store, "A")
    await call(store, "save-success-criteria", session_id="s", criteria=[{"criterion": "done"}])
    await call(store, "update-success-criterion", session_id="s", criterion="done", status="met")
    await call(store, "save-context-package", session_id="s", package_type="handoff", producer="developer",
               consumers=["tech_lead"], summary="handoff", content="notes")
    await call(store, "save-error-pattern", session_id="s", error_message="boom")
    await call(store, "log-interaction", session_id="s", agent_type="developer", content="before the end")
    await call(store, "update-session-status", session_id="s", status="completed")


def test_every_session_write_has_a_rule_for_finished_sessions() -> None:
    """A write tool that takes session_id is listed as kept or refused (a new tool must decide)."""
    writes = {name for name, op in catalog().items()
              if not op.read_only and "session_id" in op.input_model.model_fields and name != "create-session"}
    assert writes == set(KEPT) | set(REFUSED)


@pytest.mark.parametrize("tool", list(KEPT))
async def test_a_finished_session_keeps_late_history_marked_after_the_end(store: Store, tool: str) -> None:
    """Logs and token usage after the end are stored, flagged after_end; what came before is not."""
    await _completed_session(store)
    await run(store, tool, {"session_id": "s", **KEPT[tool]})
    logs = (await call(store, "get-logs", session_id="s"))["items"]
    assert logs[0]["content"] == "before the end" and logs[0]["after_end"] is False
    if tool in ("log-interaction", "log-interactions", "save-reasoning", "save-event"):
        assert len(logs) == 2 and logs[-1]["after_end"] is True
        (newest, *_) = (await call(store, "dashboard-snapshot", session_id="s"))["recent_logs"]
        assert newest["after_end"] is True
    if tool == "log-tokens":
        with sqlite3.connect(store.path) as conn:
            assert conn.execute("SELECT after_end FROM token_usage").fetchall() == [(1,)]
        conn.close()


@pytest.mark.parametrize("tool", list(REFUSED))
async def test_a_finished_session_refuses_changes_to_its_state(store: Store, db_path: Path, tool: str) -> None:
    """Groups, criteria, state, plans, context, routing: invalid_transition naming the status; nothing written."""
    await _completed_session(store)
    with unchanged(db_path), pytest.raises(InvalidTransition, match="session 's' is completed"):
        await run(store, tool, {"session_id": "s", **REFUSED[tool]})


async def test_retries_of_writes_made_before_the_end_still_answer(store: Store, db_path: Path) -> None:
    """A keyed write replayed, or a create/save that changes nothing, answers as it did; nothing is written."""
    await new_session(store, "s")
    first = await call(store, "save-state", session_id="s", state_type="pm", state={"v": 1}, idempotency_key="k")
    await _group(store, "A", complexity=3)
    await call(store, "save-success-criteria", session_id="s", criteria=[{"criterion": "done"}])
    met = await call(store, "update-success-criterion", session_id="s", criterion="done", status="met", evidence="CI")
    await call(store, "update-session-status", session_id="s", status="completed")
    with unchanged(db_path):
        again = await call(store, "save-state", session_id="s", state_type="pm", state={"v": 1}, idempotency_key="k")
        assert again == {**first, "idempotent": True}
        assert (await _group(store, "A", complexity=3))["created"] is False
        assert len((await call(store, "save-success-criteria", session_id="s",
                               criteria=[{"criterion": "done"}]))["items"]) == 1
        assert await call(store, "update-success-criterion", session_id="s", criterion="done", status="met",
                          evidence="CI") == met


# -- upsert --------------------------------------------------------------------------------------------


async def test_upsert_creates_then_updates_while_a_plain_create_still_conflicts(store: Store, db_path: Path) -> None:
    """upsert=true creates a missing group, then changes only the fields given; without it a difference conflicts."""
    await new_session(store, "s")
    created = await _group(store, "A", upsert=True, complexity=3, assigned_to="developer_1")
    assert created["created"] is True
    with unchanged(db_path), pytest.raises(Conflict, match="upsert=true"):
        await _group(store, "A", complexity=5)
    updated = await _group(store, "A", upsert=True, complexity=5)
    assert (updated["created"], updated["complexity"], updated["assigned_to"]) == (False, 5, "developer_1")
    with unchanged(db_path):
        assert (await _group(store, "A", upsert=True, complexity=5))["updated_at"] == updated["updated_at"]


async def test_upsert_follows_the_transition_table_and_the_dependency_rules(store: Store, db_path: Path) -> None:
    await new_session(store, "s")
    await _group(store, "A")
    await _group(store, "B", depends_on=["A"])
    with unchanged(db_path), pytest.raises(InvalidTransition, match="cannot start"):
        await _group(store, "B", upsert=True, status="in_progress")
    with unchanged(db_path), pytest.raises(InvalidTransition, match="cannot become merging"):
        await _group(store, "A", upsert=True, status="merging")
    with unchanged(db_path), pytest.raises(InvalidInput, match="A -> B -> A"):
        await _group(store, "A", upsert=True, depends_on=["B"])


async def test_a_retried_upsert_with_its_key_returns_the_first_result(store: Store, db_path: Path) -> None:
    """The group moved on after the first upsert: the retry answers as before and does not move it back."""
    await new_session(store, "s")
    await _group(store, "A")
    first = await _group(store, "A", upsert=True, status="in_progress", idempotency_key="up-1")
    await _update(store, "A", status="pending")
    with unchanged(db_path):
        assert await _group(store, "A", upsert=True, status="in_progress", idempotency_key="up-1") == first
    with unchanged(db_path), pytest.raises(Conflict, match="up-1"):
        await _group(store, "A", upsert=True, status="failed", idempotency_key="up-1")


# -- end to end ------------------------------------------------------------------------------------------


async def _tool(client: Any, tool: str, /, **arguments: Any) -> dict[str, Any]:
    return ok(await client.call_tool(tool, arguments))


async def _refused(client: Any, tool: str, code: str, /, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert error_code(result, tool) == code, result_text(result)
    return result_text(result)


def _copy(source: Path, dest: Path) -> None:
    """A copy of a live database (as a worktree would get one), WAL content included."""
    with sqlite3.connect(source) as src, sqlite3.connect(dest) as out:
        src.backup(out)
    src.close()
    out.close()


@pytest.mark.parametrize("mode", MODES)
async def test_groups_with_dependencies_an_early_completion_and_three_databases_merged(
        store: Store, tmp_path: Path, mode: Mode) -> None:
    """Through the MCP client: dependencies hold, completion waits for the criteria, a late log is kept;
    then three databases of one project merge into one: the continued copy once, the true conflict renamed
    with its reason, learning counts added, tokens counted once per session."""
    first = tmp_path / "first.db"
    async with connected(store, mode, tools="all") as client:
        await _tool(client, "create-session", session_id="run-1", requirements="checkout", project="shop")
        await _tool(client, "create-task-group", session_id="run-1", group_id="API", name="API")
        await _tool(client, "create-task-group", session_id="run-1", group_id="UI", name="UI", depends_on=["API"])
        assert "no task group DOCS" in await _refused(client, "create-task-group", "invalid", session_id="run-1",
                                                      group_id="E2E", name="E2E", depends_on=["UI", "DOCS"])
        assert "API -> UI -> API" in await _refused(client, "update-task-group", "invalid", session_id="run-1",
                                                    group_id="API", depends_on=["UI"])
        assert "API (pending)" in await _refused(client, "update-task-group", "invalid_transition",
                                                 session_id="run-1", group_id="UI", status="in_progress")
        await _tool(client, "update-task-group", session_id="run-1", group_id="API", status="in_progress")
        await _tool(client, "save-success-criteria", session_id="run-1", criteria=[{"criterion": "checkout works"}])
        assert "'checkout works' (pending)" in await _refused(client, "update-session-status", "invalid_transition",
                                                              session_id="run-1", status="completed")
        await _tool(client, "update-task-group", session_id="run-1", group_id="API", status="completed")
        await _tool(client, "update-task-group", session_id="run-1", group_id="UI", status="in_progress")
        await _tool(client, "log-tokens", session_id="run-1", agent_type="developer", input_tokens=1000)
        await _tool(client, "save-error-pattern", project="shop", error_message="ImportError: no module 'x'")
        await _tool(client, "save-error-pattern", project="shop", error_message="ImportError: no module 'y'")
        await _tool(client, "save-strategy", project="shop", topic="imports", insight="pin versions")
        _copy(store.path, first)
        # The first database goes on: the group finishes, the criterion is met, the session completes.
        await _tool(client, "update-task-group", session_id="run-1", group_id="UI", status="completed")
        await _tool(client, "update-success-criterion", session_id="run-1", criterion="checkout works", status="met")
        await _tool(client, "log-tokens", session_id="run-1", agent_type="tech_lead", input_tokens=500)
        done = await _tool(client, "update-session-status", session_id="run-1", status="completed")
        assert done["completion_forced"] is False
        late = await _tool(client, "log-interaction", session_id="run-1", agent_type="developer", content="late")
        logs = await _tool(client, "get-logs", session_id="run-1")
        assert [(e["log_id"], e["after_end"]) for e in logs["items"]] == [(late["log_id"], True)]
        assert "is completed" in await _refused(client, "save-state", "invalid_transition", session_id="run-1",
                                                state_type="pm", state={"x": 1})
        await _tool(client, "save-error-pattern", project="shop", error_message="ImportError: no module 'z'")
    # A third database, a worktree that reused the session id for other work, learning on its own.
    third = tmp_path / "third.db"
    async with await Store.open(third) as other, connected(other, mode, tools="all") as client:
        await _tool(client, "create-session", session_id="run-1", requirements="checkout", project="shop")
        await _tool(client, "log-tokens", session_id="run-1", agent_type="developer", input_tokens=70)
        await _tool(client, "save-error-pattern", project="shop", error_message="ImportError: no module 'w'")
        await _tool(client, "save-strategy", project="shop", topic="imports", insight="pin versions")
        await _tool(client, "save-strategy", project="shop", topic="imports", insight="pin versions")

    merged = tmp_path / "merged.db"
    reports = main_json(merged, "merge", str(first), str(store.path), str(third), "--json")
    notes = [note for report in reports for note in report["notes"]]
    assert "run-1: imported" in notes
    assert any(n.startswith("run-1: continued (this copy continues the target's") for n in notes), notes
    (conflict,) = [v for report in reports for v in report["violations"]]
    assert "the session's created_at differs" in conflict["problem"]
    renamed = re.search(r"imported as (run-1\.m[0-9a-f]{8})", conflict["action"])
    assert renamed is not None
    async with await Store.open(merged) as target:
        sessions = {s["session_id"]: s for s in (await call(target, "list-sessions"))["items"]}
        assert set(sessions) == {"run-1", renamed.group(1)}
        assert sessions["run-1"]["status"] == "completed"
        summary = await call(target, "project-summary", project="shop")
        assert summary["tokens"]["input_tokens"] == 1000 + 500 + 70, "each session's tokens once"
        patterns = (await call(target, "get-error-patterns", project="shop"))["items"]
        # One normalised error: 2 occurrences in the first copy, 3 in its continuation (the same 2 and
        # one more: counted once), 1 in the third database.
        assert [p["occurrences"] for p in patterns] == [3 + 1]
        (strategy,) = (await call(target, "get-strategies", project="shop"))["items"]
        assert strategy["helpfulness"] == 1 + 2
    again = main_json(merged, "merge", str(first), str(store.path), str(third), "--json")
    assert sum(report["totals"]["imported"] for report in again) == 0


async def test_a_long_status_reason_is_cut_like_the_requirements(store: Store) -> None:
    """The reason shown on the session is cut to max_chars (truncated: true), so a session still fits."""
    await new_session(store, "s")
    await call(store, "update-session-status", session_id="s", status="paused", reason='"' * 10_000)
    shown = await call(store, "get-session", session_id="s", max_chars=100)
    assert (shown["status_reason"], shown["truncated"]) == ('"' * 100, True)


async def test_the_new_marks_travel_in_session_bundles(store: Store, tmp_path: Path) -> None:
    """after_end, forced_start and completion_forced are exported and imported again; a session without
    them exports as before (the keys are written only when set)."""
    await new_session(store, "s")
    await _group(store, "A")
    await _group(store, "B", depends_on=["A"])
    await _update(store, "B", status="in_progress", force=True)
    await call(store, "update-session-status", session_id="s", status="completed", force=True, reason="demo")
    await call(store, "log-interaction", session_id="s", agent_type="developer", content="late")
    await call(store, "log-tokens", session_id="s", agent_type="developer", input_tokens=3)
    await new_session(store, "plain")
    bundles = tmp_path / "bundles"
    main_json(store.path, "export", "s", "plain", "--to", str(bundles))
    plain = (bundles / "plain" / "state.json").read_text(encoding="utf-8")
    assert "after_end" not in plain and "completion_forced" not in plain
    copy = tmp_path / "copy.db"
    main_json(copy, "import", "bundle", str(bundles), "--json")
    async with await Store.open(copy) as other:
        assert await call(other, "get-session", session_id="s") == await call(store, "get-session", session_id="s")
        assert (await call(other, "get-logs", session_id="s"))["items"][0]["after_end"] is True
        groups = (await call(other, "get-task-groups", session_id="s"))["items"]
        assert groups[1]["forced_start"]["blocking"] == {"A": "pending"}
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT after_end FROM token_usage").fetchall() == [(1,)]
    conn.close()
