"""Task groups: creation and its natural key, the transition table, compare-and-set and atomic counters."""

from __future__ import annotations

import itertools
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import anyio
import pytest

from baton.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from baton.store import Store
from baton.tools.groups import COUNTERS, GROUP_TRANSITIONS
from tests.core_helpers import (  # noqa: F401 (the *_fixture names: stores start from a migrated copy)
    PLACEHOLDERS,
    TIMESTAMP,
    copied_store_fixture,
    migrated_template_fixture,
    new_session,
    run,
    unchanged,
)
from tests.helpers import call

STATUSES = ("pending", "in_progress", "approved_pending_merge", "merging", "completed", "failed")


async def _group(store: Store, group_id: str = "A", session_id: str = "s", **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", f"group {group_id}")
    return await run(store, "create-task-group", {"session_id": session_id, "group_id": group_id, **fields})


async def test_create_task_group_stores_every_field_with_zero_counters(store: Store) -> None:
    """A new group returns its inputs, pending status, counters at zero and created=true."""
    await new_session(store, "s")
    await _group(store, "DB")
    created = await _group(store, "AUTH", name="Login API", assigned_to="developer_1", complexity=7,
                           initial_tier="senior_software_engineer", specializations=["python", "security"],
                           item_count=3, component_path="src/auth", security_sensitive=True, depends_on=["DB"])
    assert created == {
        "session_id": "s", "group_id": "AUTH", "name": "Login API", "status": "pending",
        "assigned_to": "developer_1", "complexity": 7, "initial_tier": "senior_software_engineer",
        "specializations": ["python", "security"], "item_count": 3, "component_path": "src/auth",
        "security_sensitive": True, "depends_on": ["DB"], "review_status": None, "merge_status": None,
        "feature_branch": None, **dict.fromkeys(COUNTERS, 0), "forced_start": None,
        "created_at": created["created_at"], "updated_at": created["created_at"], "created": True,
    }
    assert TIMESTAMP.match(created["created_at"])
    (_, listed) = (await call(store, "get-task-groups", session_id="s"))["items"]
    assert listed == {k: v for k, v in created.items() if k != "created"}


async def test_same_create_again_returns_existing_group_without_writing(store: Store, db_path: Path) -> None:
    """An identical create-task-group is a safe retry: created=false and nothing written."""
    await new_session(store, "s")
    first = await _group(store, "A", complexity=3, specializations=["go"])
    with unchanged(db_path):
        again = await _group(store, "A", complexity=3, specializations=["go"])
    assert again == {**first, "created": False}


@pytest.mark.parametrize("change", [{"name": "other"}, {"complexity": 4}, {"specializations": ["rust"]},
                                    {"security_sensitive": True}, {"depends_on": ["B"]}, {"status": "in_progress"}])
async def test_create_with_different_values_for_an_existing_group_is_a_conflict(
    store: Store, db_path: Path, change: dict[str, Any]
) -> None:
    """A different payload for an existing (session, group_id) is a conflict pointing at update-task-group."""
    await new_session(store, "s")
    await _group(store, "A", complexity=3, specializations=["go"])
    with unchanged(db_path), pytest.raises(Conflict, match="update-task-group"):
        await _group(store, "A", **{"complexity": 3, "specializations": ["go"], **change})


async def test_a_retried_create_after_the_group_moved_on_is_still_a_retry(store: Store, db_path: Path) -> None:
    """The create's answer was lost and the group has been updated since: the retry, as first sent, returns
    the group as it is now with created=false (it is not a conflict); a create matching neither is."""
    await new_session(store, "s")
    await _group(store, "A", complexity=3, specializations=["go"])
    moved = await call(store, "update-task-group", session_id="s", group_id="A", status="in_progress",
                       assigned_to="dev_1", complexity=5)
    with unchanged(db_path):
        retry = await _group(store, "A", complexity=3, specializations=["go"])
        assert retry == {**moved, "created": False}
        as_now = await _group(store, "A", complexity=5, specializations=["go"], status="in_progress",
                              assigned_to="dev_1")
        assert as_now["created"] is False
        with pytest.raises(Conflict, match="update-task-group"):
            await _group(store, "A", complexity=4, specializations=["go"])


async def test_the_same_group_id_in_another_session_is_a_new_group(store: Store) -> None:
    """Group ids are scoped to their session."""
    await new_session(store, "s")
    await new_session(store, "t")
    await _group(store, "A", session_id="s", name="one")
    assert (await _group(store, "A", session_id="t", name="two"))["created"] is True
    assert [g["name"] for g in (await call(store, "get-task-groups", session_id="t"))["items"]] == ["two"]


@pytest.mark.parametrize("group_id", ["global", "session", "all", "default", "GLOBAL", "Default"])
async def test_reserved_group_ids_are_rejected(store: Store, db_path: Path, group_id: str) -> None:
    """The scope words global, session, all and default (any case) cannot name a task group."""
    await new_session(store, "s")
    with unchanged(db_path), pytest.raises(InvalidInput, match="reserved"):
        await _group(store, group_id)


@pytest.mark.parametrize("group_id", [*PLACEHOLDERS, "has space", "x" * 65, "dot.ted", ""])
async def test_bad_group_ids_are_invalid(store: Store, db_path: Path, group_id: str) -> None:
    """Placeholders (named as such), bad characters and over-long ids are invalid and write nothing."""
    await new_session(store, "s")
    with unchanged(db_path), pytest.raises(InvalidInput) as caught:
        await _group(store, group_id)
    if group_id in PLACEHOLDERS:
        assert "placeholder" in str(caught.value)
    with pytest.raises(InvalidInput):
        await _group(store, "A", depends_on=[group_id])


@pytest.mark.parametrize("fields", [
    {"complexity": 0}, {"complexity": 11}, {"initial_tier": "tech_lead"}, {"status": "done"},
    {"item_count": -1}, {"name": " "}, {"specializations": "python"}, {"qa_attempts": 3},
])
async def test_bad_create_values_are_invalid(store: Store, db_path: Path, fields: dict[str, Any]) -> None:
    """Out-of-range complexity, unknown tiers and statuses, blank names, counters set directly: invalid."""
    await new_session(store, "s")
    with unchanged(db_path), pytest.raises(InvalidInput):
        await _group(store, "A", **fields)


async def test_group_in_unknown_session_is_not_found(store: Store, db_path: Path) -> None:
    """Creating, updating or listing groups of a missing session is not_found; so is a missing group."""
    await new_session(store, "s")
    with unchanged(db_path):
        with pytest.raises(NotFound, match="session 'ghost'"):
            await _group(store, "A", session_id="ghost")
        with pytest.raises(NotFound, match="session 'ghost'"):
            await call(store, "update-task-group", session_id="ghost", group_id="A", status="in_progress")
        with pytest.raises(NotFound, match="task group 'A'"):
            await call(store, "update-task-group", session_id="s", group_id="A", status="in_progress")
        with pytest.raises(NotFound):
            await call(store, "get-task-groups", session_id="ghost")


async def test_group_status_transitions_follow_the_table(store: Store, db_path: Path) -> None:
    """Every (from, to) pair: allowed by GROUP_TRANSITIONS moves, same status is a no-op, the rest are refused."""
    await new_session(store, "s")
    outcomes: dict[tuple[str, str], str] = {}
    for index, (source, target) in enumerate(itertools.product(STATUSES, STATUSES)):
        group_id = f"g{index}"
        await _group(store, group_id, status=source)
        try:
            with unchanged(db_path) if target not in (source, *GROUP_TRANSITIONS[source]) else nullcontext():
                updated = await call(store, "update-task-group", session_id="s", group_id=group_id, status=target)
        except InvalidTransition as exc:
            assert f"is {source}; it cannot become {target}" in str(exc)
            outcomes[(source, target)] = "refused"
            continue
        assert updated["status"] == target
        outcomes[(source, target)] = "allowed"
    expected = {(s, t): "allowed" if s == t or t in GROUP_TRANSITIONS[s] else "refused"
                for s, t in itertools.product(STATUSES, STATUSES)}
    assert outcomes == expected
    # The table itself keeps the contract's shape: completed is terminal, nothing skips straight to done.
    assert GROUP_TRANSITIONS["completed"] == () and "completed" not in GROUP_TRANSITIONS["pending"]
    assert set(GROUP_TRANSITIONS) == set(STATUSES)
    assert all(set(targets) <= set(STATUSES) for targets in GROUP_TRANSITIONS.values())


async def test_refused_transition_applies_none_of_the_update(store: Store, db_path: Path) -> None:
    """When the status change is refused, the other fields and increments in the same call are not applied."""
    await new_session(store, "s")
    await _group(store, "A", status="completed")
    with unchanged(db_path), pytest.raises(InvalidTransition):
        await call(store, "update-task-group", session_id="s", group_id="A", status="in_progress",
                   assigned_to="dev_2", increment={"qa_attempts": 1})


async def test_update_changes_the_given_fields_only(store: Store) -> None:
    """Fields not mentioned keep their values; updated_at moves."""
    await new_session(store, "s")
    created = await _group(store, "A", assigned_to="dev_1", complexity=5, specializations=["go"])
    updated = await run(store, "update-task-group", {
        "session_id": "s", "group_id": "A", "review_status": "changes_requested", "merge_status": "conflict",
        "feature_branch": "feature/a", "name": "renamed", "security_sensitive": True})
    assert (updated["review_status"], updated["merge_status"], updated["feature_branch"], updated["name"],
            updated["security_sensitive"]) == ("changes_requested", "conflict", "feature/a", "renamed", True)
    assert (updated["assigned_to"], updated["complexity"], updated["specializations"]) == ("dev_1", 5, ["go"])
    assert updated["updated_at"] >= created["updated_at"] and updated["created_at"] == created["created_at"]


@pytest.mark.parametrize("fields", [
    {}, {"expected_status": "pending"}, {"review_status": "lgtm"}, {"merge_status": "done"},
    {"qa_attempts": 2}, {"increment": {"stars": 1}}, {"increment": {"qa_attempts": 1001}},
    {"increment": {"qa_attempts": "one"}}, {"complexity": 0}, {"status": "archived"},
])
async def test_bad_updates_are_invalid(store: Store, db_path: Path, fields: dict[str, Any]) -> None:
    """Empty updates, unknown enums and counters, direct counter writes and huge increments are invalid."""
    await new_session(store, "s")
    await _group(store, "A")
    with unchanged(db_path), pytest.raises(InvalidInput):
        await call(store, "update-task-group", session_id="s", group_id="A", **fields)


async def test_expected_status_is_compare_and_set(store: Store, db_path: Path) -> None:
    """expected_status equal to the current status applies the update; a different one is a conflict."""
    await new_session(store, "s")
    await _group(store, "A")
    moved = await call(store, "update-task-group", session_id="s", group_id="A", status="in_progress",
                       expected_status="pending")
    assert moved["status"] == "in_progress"
    with unchanged(db_path), pytest.raises(Conflict, match="is in_progress, not the expected pending"):
        await call(store, "update-task-group", session_id="s", group_id="A", status="completed",
                   expected_status="pending")


async def test_only_one_of_two_racing_compare_and_sets_wins(store: Store) -> None:
    """Two agents claiming the same pending group concurrently: exactly one succeeds, the other conflicts."""
    await new_session(store, "s")
    await _group(store, "A")
    outcomes: list[str] = []

    async def claim(agent: str) -> None:
        try:
            await call(store, "update-task-group", session_id="s", group_id="A", status="in_progress",
                       assigned_to=agent, expected_status="pending")
            outcomes.append(agent)
        except Conflict:
            outcomes.append("conflict")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for agent in ("dev_1", "dev_2", "dev_3"):
                tg.start_soon(claim, agent)
    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1 and outcomes.count("conflict") == 2
    (group,) = (await call(store, "get-task-groups", session_id="s"))["items"]
    assert group["assigned_to"] == winners[0]


async def test_increments_add_to_counters(store: Store) -> None:
    """increment adds to each named counter, several at once, and may go down to zero."""
    await new_session(store, "s")
    await _group(store, "A")
    await call(store, "update-task-group", session_id="s", group_id="A",
               increment={"qa_attempts": 2, "revision_count": 1})
    updated = await call(store, "update-task-group", session_id="s", group_id="A",
                         increment={"qa_attempts": -2, "blocking_issues_count": 5})
    assert {c: updated[c] for c in COUNTERS} == {**dict.fromkeys(COUNTERS, 0), "revision_count": 1,
                                                "blocking_issues_count": 5}


async def test_increment_below_zero_is_rejected_and_changes_nothing(store: Store, db_path: Path) -> None:
    """A negative increment that would take a counter below zero fails; no counter in the call moves."""
    await new_session(store, "s")
    await _group(store, "A")
    await call(store, "update-task-group", session_id="s", group_id="A", increment={"qa_attempts": 1})
    with unchanged(db_path), pytest.raises(InvalidInput):
        await call(store, "update-task-group", session_id="s", group_id="A",
                   increment={"qa_attempts": -2, "revision_count": 1}, assigned_to="x")


async def test_concurrent_increments_are_all_counted(store: Store) -> None:
    """100 concurrent increments through the store leave the counters exact."""
    await new_session(store, "s")
    await _group(store, "A")
    await _group(store, "B")

    async def bump(group_id: str) -> None:
        await call(store, "update-task-group", session_id="s", group_id=group_id,
                   increment={"qa_attempts": 1, "tl_review_attempts": 2})

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for index in range(100):
                tg.start_soon(bump, "AB"[index % 2])
    groups = (await call(store, "get-task-groups", session_id="s"))["items"]
    assert [(g["qa_attempts"], g["tl_review_attempts"]) for g in groups] == [(50, 100), (50, 100)]


async def test_get_task_groups_oldest_first_and_filtered_by_status(store: Store) -> None:
    """get-task-groups lists a session's groups in creation order, optionally by status."""
    await new_session(store, "s")
    for group_id in ("Z", "A", "M"):
        await _group(store, group_id)
    await call(store, "update-task-group", session_id="s", group_id="A", status="in_progress")
    listed = await call(store, "get-task-groups", session_id="s")
    assert [g["group_id"] for g in listed["items"]] == ["Z", "A", "M"]
    pending = await call(store, "get-task-groups", session_id="s", status="pending")
    assert [g["group_id"] for g in pending["items"]] == ["Z", "M"]
    assert (await call(store, "get-task-groups", session_id="s", status="merging"))["items"] == []
