"""Sessions through the operation table: create, read, list, and the status lifecycle."""

from __future__ import annotations

import itertools
import sqlite3
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import anyio
import pytest

from baton.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from baton.store import Store
from tests.core_helpers import (  # noqa: F401 (the *_fixture names: stores start from a migrated copy)
    PLACEHOLDERS,
    TIMESTAMP,
    copied_store_fixture,
    migrated_template_fixture,
    new_session,
    unchanged,
)
from tests.helpers import call

STATUSES = ("active", "paused", "completed", "failed", "cancelled")
TERMINAL = {"completed", "failed", "cancelled"}


async def _ready_session(store: Store, session_id: str, **arguments: Any) -> str:
    """A session whose one required criterion is met, so it may complete."""
    await new_session(store, session_id, **arguments)
    await call(store, "save-success-criteria", session_id=session_id, criteria=[{"criterion": "done"}])
    await call(store, "update-success-criterion", session_id=session_id, criterion="done", status="met")
    return session_id


async def test_create_session_stores_every_field(store: Store) -> None:
    """A new session comes back active, with its inputs, UTC millisecond timestamps and created=true."""
    created = await call(store, "create-session", session_id="s-1", requirements="add login", mode="parallel",
                         project="shop", initial_branch="main", metadata={"testing_mode": "full"})
    expected = {
        "session_id": "s-1", "project": "shop", "mode": "parallel", "status": "active",
        "requirements": "add login", "initial_branch": "main", "metadata": {"testing_mode": "full"},
        "created_at": created["created_at"], "updated_at": created["created_at"], "ended_at": None,
        "status_reason": None, "completion_forced": False, "created": True,
    }
    assert {k: created.get(k, "<missing>") for k in expected} == expected
    assert not created.get("truncated"), "a short session is never cut"
    assert TIMESTAMP.match(created["created_at"])
    fetched = await call(store, "get-session", session_id="s-1")
    assert fetched == {k: v for k, v in created.items() if k != "created"}


async def test_create_session_defaults_to_simple_mode_and_empty_metadata(store: Store) -> None:
    """mode defaults to simple, metadata to {}, project and branch to null."""
    created = await call(store, "create-session", session_id="s", requirements="r")
    assert (created["mode"], created["metadata"], created["project"], created["initial_branch"]) == (
        "simple", {}, None, None)


async def test_omitted_session_id_is_generated_unique_and_valid(store: Store) -> None:
    """Without a session_id the server makes a unique one that is itself a valid id."""
    ids = [(await call(store, "create-session", requirements=f"r{i}"))["session_id"] for i in range(5)]
    assert len(set(ids)) == 5
    for session_id in ids:
        assert (await call(store, "get-session", session_id=session_id))["session_id"] == session_id


async def test_a_retried_create_with_a_generated_id_returns_the_first_session(store: Store, db_path: Path) -> None:
    """Without a session_id, an idempotency_key makes the retry of a create return the session the first
    call generated (not a second session); the key with another payload is a conflict."""
    first = await call(store, "create-session", requirements="r", idempotency_key="start-1")
    with unchanged(db_path):
        retry = await call(store, "create-session", requirements="r", idempotency_key="start-1")
        assert retry == {**first, "created": False}
        with pytest.raises(Conflict, match="idempotency_key 'start-1'"):
            await call(store, "create-session", requirements="other", idempotency_key="start-1")
    other = await call(store, "create-session", requirements="r", idempotency_key="start-2")
    assert other["session_id"] != first["session_id"]
    assert len((await call(store, "list-sessions"))["items"]) == 2


async def test_same_create_again_returns_existing_session_without_writing(store: Store, db_path: Path) -> None:
    """Creating an identical session again is a safe retry: created=false, same row, nothing written."""
    first = await call(store, "create-session", session_id="s", requirements="r", project="p",
                       metadata={"a": 1})
    with unchanged(db_path):
        again = await call(store, "create-session", session_id="s", requirements="r", project="p",
                           metadata={"a": 1})
    assert again == {**first, "created": False}


async def test_same_create_after_a_status_change_is_still_a_retry(store: Store) -> None:
    """The natural key compares the creation payload, not the status the session has moved on to."""
    await new_session(store, "s", requirements="r")
    await call(store, "update-session-status", session_id="s", status="paused")
    again = await call(store, "create-session", session_id="s", requirements="r")
    assert again["created"] is False and again["status"] == "paused"


@pytest.mark.parametrize("change", [
    {"requirements": "other"}, {"mode": "parallel"}, {"project": "p2"}, {"initial_branch": "dev"},
    {"metadata": {"a": 2}},
])
async def test_create_with_a_different_payload_for_an_existing_id_is_a_conflict(
    store: Store, db_path: Path, change: dict[str, Any]
) -> None:
    """Any difference in the payload for an existing session_id is a conflict and changes nothing."""
    base = {"session_id": "s", "requirements": "r", "mode": "simple", "metadata": {"a": 1}}
    await call(store, "create-session", **base)
    with unchanged(db_path), pytest.raises(Conflict, match="already exists"):
        await call(store, "create-session", **{**base, **change})


@pytest.mark.parametrize("arguments", [
    {"requirements": ""},
    {"requirements": "   "},
    {"requirements": "r", "mode": "serial"},
    {"requirements": "r", "metadata": ["not", "an", "object"]},
    {"requirements": "r", "session_id": "-starts-with-dash"},
    {"requirements": "r", "session_id": "has space"},
    {"requirements": "r", "session_id": "x" * 129},
    {"requirements": "r", "sesion_id": "typo"},
    {},
])
async def test_bad_create_input_is_invalid_and_writes_nothing(
    store: Store, db_path: Path, arguments: dict[str, Any]
) -> None:
    """Every kind of bad create-session input is `invalid` and leaves the database as it was."""
    with unchanged(db_path), pytest.raises(InvalidInput):
        await call(store, "create-session", **arguments)


async def test_misspelt_parameter_names_the_allowed_ones(store: Store) -> None:
    """An unknown parameter is rejected with the list of allowed names, not silently ignored."""
    with pytest.raises(InvalidInput, match=r"unknown parameter 'sesion_id' \(allowed: session_id"):
        await call(store, "create-session", requirements="r", sesion_id="x")


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
async def test_placeholder_session_ids_are_rejected_as_placeholders(
    store: Store, db_path: Path, placeholder: str
) -> None:
    """An unfilled template instead of a session id is rejected with a message that says so."""
    with unchanged(db_path), pytest.raises(InvalidInput, match="placeholder"):
        await call(store, "create-session", session_id=placeholder, requirements="r")
    with pytest.raises(InvalidInput, match="placeholder"):
        await call(store, "get-session", session_id=placeholder)
    with pytest.raises(InvalidInput, match="placeholder"):
        await call(store, "create-session", requirements="r", project=placeholder)


async def test_braces_in_free_text_are_not_placeholders(store: Store) -> None:
    """Free text (requirements) may contain braces and dollars; only ids are checked for templates."""
    created = await call(store, "create-session", session_id="s", requirements="render {name} for $USER <b>")
    assert created["requirements"] == "render {name} for $USER <b>"


async def test_unknown_session_is_not_found(store: Store) -> None:
    """Reading or updating a session that does not exist is not_found."""
    with pytest.raises(NotFound, match="create-session"):
        await call(store, "get-session", session_id="ghost")
    with pytest.raises(NotFound):
        await call(store, "update-session-status", session_id="ghost", status="paused")


async def test_session_status_transitions(store: Store, db_path: Path) -> None:
    """Every (from, to) pair: terminal states cannot be left, the rest move freely, same status is a no-op."""
    outcomes: dict[tuple[str, str], str] = {}
    for index, (source, target) in enumerate(itertools.product(STATUSES, STATUSES)):
        session_id = f"s{index}"
        await _ready_session(store, session_id)
        if source != "active":
            await call(store, "update-session-status", session_id=session_id, status=source)
        before = await call(store, "get-session", session_id=session_id)
        try:
            with unchanged(db_path) if source in TERMINAL and source != target else nullcontext():
                after = await call(store, "update-session-status", session_id=session_id, status=target)
        except InvalidTransition:
            outcomes[(source, target)] = "invalid_transition"
            assert await call(store, "get-session", session_id=session_id) == before
            continue
        outcomes[(source, target)] = "same" if after == before else "moved"
        assert after["status"] == target
    expected = {
        (s, t): "same" if s == t else "invalid_transition" if s in TERMINAL else "moved"
        for s, t in itertools.product(STATUSES, STATUSES)
    }
    assert outcomes == expected


async def test_ended_at_is_set_on_entering_a_terminal_state_only(store: Store) -> None:
    """ended_at stays null through active and paused and is set, with updated_at, on completion."""
    await _ready_session(store, "s")
    created = await call(store, "get-session", session_id="s")
    paused = await call(store, "update-session-status", session_id="s", status="paused", reason="waiting")
    assert paused["ended_at"] is None and paused["status"] == "paused"
    resumed = await call(store, "update-session-status", session_id="s", status="active")
    assert resumed["ended_at"] is None
    done = await call(store, "update-session-status", session_id="s", status="completed")
    assert done["ended_at"] is not None and TIMESTAMP.match(done["ended_at"])
    assert done["updated_at"] == done["ended_at"] >= created["created_at"]
    again = await call(store, "update-session-status", session_id="s", status="completed")
    assert again == done


async def test_update_of_terminal_session_is_rejected(store: Store, db_path: Path) -> None:
    """A cancelled session cannot be reactivated; the error names the current status."""
    await new_session(store, "s")
    await call(store, "update-session-status", session_id="s", status="cancelled")
    with unchanged(db_path), pytest.raises(InvalidTransition, match="is cancelled"):
        await call(store, "update-session-status", session_id="s", status="active")


async def test_bad_status_is_invalid(store: Store, db_path: Path) -> None:
    """A status outside the enum is invalid and writes nothing."""
    await new_session(store, "s")
    with unchanged(db_path), pytest.raises(InvalidInput, match="status"):
        await call(store, "update-session-status", session_id="s", status="done")


async def test_list_sessions_newest_first_with_filters(store: Store) -> None:
    """list-sessions returns newest first and filters by status and project."""
    for index in range(4):
        await _ready_session(store, f"s{index}", project="a" if index % 2 == 0 else "b")
    await call(store, "update-session-status", session_id="s1", status="completed")
    listed = await call(store, "list-sessions")
    assert [s["session_id"] for s in listed["items"]] == ["s3", "s2", "s1", "s0"]
    assert listed["next_cursor"] is None
    by_project = await call(store, "list-sessions", project="a")
    assert [s["session_id"] for s in by_project["items"]] == ["s2", "s0"]
    completed = await call(store, "list-sessions", status="completed")
    assert [s["session_id"] for s in completed["items"]] == ["s1"]
    assert (await call(store, "list-sessions", project="nobody"))["items"] == []


async def test_list_sessions_paging_visits_every_session_once(store: Store) -> None:
    """Following next_cursor pages through all sessions exactly once, in order."""
    for index in range(23):
        await new_session(store, f"s{index:02d}")
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await call(store, "list-sessions", limit=5, cursor=cursor)
        assert len(page["items"]) <= 5
        seen += [s["session_id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"s{i:02d}" for i in reversed(range(23))]


@pytest.mark.parametrize("arguments", [{"limit": 0}, {"limit": 501}, {"cursor": "garbage!"}, {"status": "x"}])
async def test_list_sessions_rejects_bad_paging(store: Store, arguments: dict[str, Any]) -> None:
    """Limits outside 1..500, a cursor the server did not issue and unknown statuses are invalid."""
    with pytest.raises(InvalidInput):
        await call(store, "list-sessions", **arguments)


async def test_a_write_cancelled_while_waiting_for_the_database_leaves_the_store_usable(
    store: Store, db_path: Path
) -> None:
    """A write cancelled while another process holds the write lock leaves no transaction open behind it."""
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(new_session, store, "cancelled")
                await anyio.wait_all_tasks_blocked()  # waiting inside SQLite for the blocker's lock
                tg.cancel_scope.cancel()
                blocker.execute("ROLLBACK")  # the lock frees while the cancelled write's BEGIN is pending
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()
    with anyio.fail_after(30):
        created = await call(store, "create-session", session_id="after", requirements="r")
    assert created["created"] is True
    other = sqlite3.connect(db_path, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # the store holds no write lock once its write is done
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert [s["session_id"] for s in (await call(store, "list-sessions"))["items"]] == ["after"]


async def test_reads_cancelled_mid_flight_leave_every_reader_usable(store: Store) -> None:
    """Reads cancelled as they start do not poison the pooled read connections for later reads."""
    await new_session(store, "s")

    async def read() -> None:
        assert (await call(store, "get-session", session_id="s"))["session_id"] == "s"

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(read)  # fills the pool, so the cancelled reads below are on pooled connections
    for _ in range(3):
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(read)
                await anyio.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(read)
