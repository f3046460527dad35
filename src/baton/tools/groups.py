"""Task groups: the units of work of a session, their status, reviews and counters."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from baton.clock import utc_now
from baton.errors import Conflict, InvalidTransition, NotFound
from baton.models import (
    MAX_LIMIT,
    Cursor,
    GroupId,
    IdempotencyKey,
    Input,
    Limit,
    NewGroupId,
    Output,
    Page,
    SessionId,
    Text,
)
from baton.operations import cursor_position, encode_cursor, fit_to_budget, operation
from baton.store import Store, fetch_all, fetch_one, record_request, recorded_request, request_digest
from baton.tools._common import load_json, require_open_session, require_session
from baton.tools._dependencies import check_dependencies, dependency_graph, describe, unfinished_dependencies

GroupStatus = Literal["pending", "in_progress", "approved_pending_merge", "merging", "completed", "failed"]
Tier = Literal["developer", "senior_software_engineer"]
ReviewStatus = Literal["approved", "changes_requested"]
MergeStatus = Literal["pending", "in_progress", "merged", "conflict", "test_failure"]
Counter = Literal[
    "revision_count",
    "qa_attempts",
    "tl_review_attempts",
    "review_iteration",
    "no_progress_count",
    "blocking_issues_count",
]
COUNTERS: tuple[str, ...] = Counter.__args__  # type: ignore[attr-defined]

# The allowed task-group transitions (also rendered in the README). The same status again is a
# no-op. completed is terminal; a failed group may be picked up again.
GROUP_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("in_progress", "failed"),
    "in_progress": ("pending", "approved_pending_merge", "completed", "failed"),
    "approved_pending_merge": ("in_progress", "merging", "completed", "failed"),
    "merging": ("in_progress", "approved_pending_merge", "completed", "failed"),
    "completed": (),
    "failed": ("pending", "in_progress"),
}
# Statuses a group may be created in while its dependencies are not done (it has not started).
NOT_STARTED = frozenset({"pending", "failed"})


def _distinct(ids: list[str]) -> list[str]:
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"lists {', '.join(twice)} more than once")
    return ids


Dependencies = Annotated[list[GroupId], Field(max_length=100, description="Groups that must be completed first."),
                         AfterValidator(_distinct)]

Specializations = Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]], Field(
    max_length=50, description="Skills it needs, e.g. auth; `research` makes route treat it as research.")]
AssignedTo = Annotated[str, Field(max_length=128, description="Agent instance on it, e.g. developer_1.")]
Complexity = Annotated[int, Field(ge=1, le=10, description="Effort estimate: 1 trivial to 10 hardest.")]
SECURITY_SENSITIVE = "route gives it to a senior engineer and requires a tech-lead review."


class TaskGroup(Output):
    session_id: str
    group_id: str
    name: str
    status: GroupStatus
    assigned_to: str | None
    complexity: int | None
    initial_tier: Tier | None
    specializations: list[str]
    item_count: int | None
    component_path: str | None
    security_sensitive: bool
    depends_on: list[str]
    review_status: ReviewStatus | None
    merge_status: MergeStatus | None
    feature_branch: str | None
    revision_count: int
    qa_attempts: int
    tl_review_attempts: int
    review_iteration: int
    no_progress_count: int
    blocking_issues_count: int
    forced_start: dict[str, Any] | None = None
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TaskGroup:
        data = {name: row[name] for name in cls.model_fields if name in row.keys()}  # noqa: SIM118 (sqlite3.Row)
        data["specializations"] = load_json(row["specializations"])
        data["depends_on"] = load_json(row["depends_on"])
        data["forced_start"] = load_json(data.get("forced_start"))
        data["security_sensitive"] = bool(row["security_sensitive"])
        return cls(**data)


class TaskGroupCreated(TaskGroup):
    created: bool = Field(description="False when an identical group already existed (a safe retry).")


class CreateTaskGroupInput(Input):
    session_id: SessionId
    group_id: Annotated[NewGroupId, Field(description="Your id for it, unique in the session, e.g. API.")]
    name: Annotated[Text, Field(max_length=500, description="What the group delivers, in a few words.")]
    status: GroupStatus = Field("pending", description="Start status; in_progress needs depends_on completed.")
    assigned_to: AssignedTo | None = None
    complexity: Complexity | None = None
    initial_tier: Tier | None = Field(None, description="Who implements it first; route spawns it (default developer).")
    specializations: Specializations | None = None
    item_count: Annotated[int, Field(ge=0, le=1_000_000, description="How many tasks the group has.")] | None = None
    component_path: Annotated[str, Field(max_length=1000, description="Code it touches, e.g. src/auth.")] | None = None
    security_sensitive: bool = Field(False, description=SECURITY_SENSITIVE)
    depends_on: Dependencies | None = None
    upsert: bool = Field(False, description="If it exists, update the given fields instead of conflict.")
    idempotency_key: IdempotencyKey | None = None


@operation("create-task-group", title="Create task group")
async def create_task_group(store: Store, args: CreateTaskGroupInput) -> TaskGroupCreated:
    """Add a task group to a session.

    depends_on names existing groups, without cycles; a group starts only when they are completed.
    The same payload again returns the group with created=false; a different one is a conflict,
    or with upsert=true updates the given fields (as update-task-group).
    """
    values = args.model_dump(exclude={"session_id", "group_id", "upsert", "idempotency_key"})
    values["specializations"] = json.dumps(args.specializations or [])
    values["depends_on"] = json.dumps(args.depends_on or [])
    values["security_sensitive"] = int(args.security_sensitive)
    # The creating payload is recorded, so a retry after a lost answer is recognised even when the
    # group has been updated since (its status moved on): comparing with the current values alone
    # called that retry a conflict.
    request_hash = request_digest(values)
    async with store.write() as conn:
        await require_session(conn, args.session_id)

        async def write() -> dict[str, Any]:
            existing = await fetch_one(conn, "SELECT * FROM task_groups WHERE session_id = ? AND group_id = ?",
                                       (args.session_id, args.group_id))
            if existing is not None:
                creation = await recorded_request(conn, args.session_id, "create-task-group", args.group_id)
                as_first_sent = creation is not None and creation["request_hash"] == request_hash
                if as_first_sent or all(existing[k] == v for k, v in values.items()):
                    return _created(existing, False)
                if not args.upsert:
                    raise Conflict(
                        f"task group {args.group_id!r} already exists in session {args.session_id!r} with different "
                        "values; use update-task-group to change it, or upsert=true"
                    )
                given = {k: v for k, v in values.items() if k in args.model_fields_set and existing[k] != v}
                return _created(await _update(conn, existing, given) if given else existing, False)
            await require_open_session(conn, args.session_id, "new task groups")
            graph = await dependency_graph(conn, args.session_id)
            check_dependencies(args.session_id, args.group_id, args.depends_on or [], graph)
            blocking = unfinished_dependencies(args.depends_on or [], graph)
            if args.status not in NOT_STARTED and blocking:
                raise InvalidTransition(
                    f"task group {args.group_id!r} cannot be created {args.status}: {describe(blocking)}; create it "
                    "pending and start it with update-task-group when they are (or with force=true)"
                )
            now = utc_now()
            row = {"session_id": args.session_id, "group_id": args.group_id, **values, "created_at": now,
                   "updated_at": now}
            await conn.execute(f"INSERT INTO task_groups ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                               tuple(row.values()))
            await record_request(conn, args.session_id, "create-task-group", args.group_id, request_hash, {})
            return _created(await _require_group(conn, args.session_id, args.group_id), True)

        # A retry key of its own namespace: the natural-key records above use the group id as the key.
        key = None if args.idempotency_key is None else f"key:{args.idempotency_key}"
        result, _ = await store.idempotent(conn, session_id=args.session_id, operation="create-task-group", key=key,
                                           payload=args.model_dump(exclude={"idempotency_key"}), write=write)
    return TaskGroupCreated(**result)


def _created(row: sqlite3.Row, created: bool) -> dict[str, Any]:
    return TaskGroupCreated(**TaskGroup.from_row(row).model_dump(), created=created).model_dump(mode="json")


async def _require_group(conn: Any, session_id: str, group_id: str) -> sqlite3.Row:
    sql = "SELECT * FROM task_groups WHERE session_id = ? AND group_id = ?"
    row = await fetch_one(conn, sql, (session_id, group_id))
    if row is None:
        await require_session(conn, session_id)
        raise NotFound(f"task group {group_id!r} does not exist in session {session_id!r}; see get-task-groups")
    return row


class UpdateTaskGroupInput(Input):
    session_id: SessionId
    group_id: GroupId
    status: GroupStatus | None = Field(None, description="New status (see the transition table).")
    assigned_to: AssignedTo | None = None
    name: Annotated[Text, Field(max_length=500)] | None = Field(None, description="New name.")
    complexity: Complexity | None = None
    review_status: ReviewStatus | None = Field(None, description="The tech lead's verdict.")
    merge_status: MergeStatus | None = Field(None, description="How merging the feature branch went.")
    feature_branch: Annotated[str, Field(max_length=250, description="Git branch with the group's work.")] | None = None
    specializations: Specializations | None = None
    security_sensitive: bool | None = Field(None, description=SECURITY_SENSITIVE)
    depends_on: Dependencies | None = None
    force: bool = Field(False, description="Start despite unfinished depends_on (recorded).")
    increment: dict[Counter, Annotated[int, Field(ge=-1000, le=1000)]] | None = Field(
        None, description='Counters to add to atomically, e.g. {"qa_attempts": 1}.'
    )
    expected_status: GroupStatus | None = Field(
        None, description="Compare-and-set: conflict unless the group has this status now."
    )
    idempotency_key: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> UpdateTaskGroupInput:
        if not self.model_fields_set - {"session_id", "group_id", "expected_status", "idempotency_key", "force"}:
            raise ValueError("nothing to update: give at least one field or an increment")
        return self


@operation("update-task-group", title="Update task group")
async def update_task_group(store: Store, args: UpdateTaskGroupInput) -> TaskGroup:
    """Change a task group's fields and add to its counters atomically.

    Status changes follow the transition table (invalid_transition otherwise); in_progress needs
    every dependency completed, unless force (recorded as forced_start). expected_status makes the
    update conditional (conflict if the current status differs).
    """
    fields = args.model_dump(exclude_unset=True, exclude={"session_id", "group_id", "increment", "expected_status",
                                                          "idempotency_key", "force"})
    if "specializations" in fields:
        fields["specializations"] = json.dumps(fields["specializations"])
    if "depends_on" in fields:
        fields["depends_on"] = json.dumps(fields["depends_on"] or [])
    if "security_sensitive" in fields:
        fields["security_sensitive"] = int(fields["security_sensitive"])
    async with store.write() as conn:

        async def write() -> dict[str, Any]:
            row = await _require_group(conn, args.session_id, args.group_id)
            current = row["status"]
            if args.expected_status is not None and current != args.expected_status:
                raise Conflict(
                    f"task group {args.group_id!r} is {current}, not the expected {args.expected_status}; "
                    "re-read it and decide again"
                )
            updated = await _update(conn, row, fields, args.increment, force=args.force)
            return TaskGroup.from_row(updated).model_dump(mode="json")

        result, _ = await store.idempotent(
            conn, session_id=args.session_id, operation="update-task-group", key=args.idempotency_key,
            payload=args.model_dump(exclude={"idempotency_key"}), write=write,
        )
    return TaskGroup(**result)


async def _update(conn: Any, row: sqlite3.Row, fields: dict[str, Any],
                  increment: Mapping[Counter, int] | None = None, *, force: bool = False) -> sqlite3.Row:
    """Apply `fields` (column -> stored value) and `increment` to the group `row`, under the rules:
    the session has not ended, the transition table, the dependencies (see check_dependencies), and
    a start only once they are completed (or forced, which is recorded)."""
    session_id, group_id, current = row["session_id"], row["group_id"], row["status"]
    await require_open_session(conn, session_id, "task-group changes")
    target = fields.get("status")
    if target is not None and target != current and target not in GROUP_TRANSITIONS[current]:
        allowed = ", ".join(GROUP_TRANSITIONS[current]) or "none (terminal)"
        raise InvalidTransition(f"task group {group_id!r} is {current}; it cannot become {target} (allowed: {allowed})")
    depends_on: list[str] = json.loads(fields.get("depends_on", row["depends_on"]))
    graph: dict[str, tuple[str, list[str]]] | None = None
    if "depends_on" in fields:
        graph = await dependency_graph(conn, session_id)
        check_dependencies(session_id, group_id, depends_on, graph)
    if target == "in_progress" and current != "in_progress":
        blocking = unfinished_dependencies(depends_on, graph or await dependency_graph(conn, session_id))
        if blocking and not force:
            raise InvalidTransition(f"task group {group_id!r} cannot start: {describe(blocking)}; start it when they "
                                    "are, or pass force=true (recorded)")
        if blocking:
            fields = {**fields, "forced_start": json.dumps({"at": utc_now(), "blocking": blocking})}
    assignments = [f"{column} = ?" for column in fields]
    params: list[Any] = list(fields.values())
    for counter, delta in (increment or {}).items():
        assignments.append(f"{counter} = {counter} + ?")
        params.append(delta)
    assignments.append("updated_at = ?")
    params.append(utc_now())
    await conn.execute(f"UPDATE task_groups SET {', '.join(assignments)} WHERE session_id = ? AND group_id = ?",
                       (*params, session_id, group_id))
    return await _require_group(conn, session_id, group_id)


class GetTaskGroupsInput(Input):
    session_id: SessionId
    status: GroupStatus | None = Field(None, description="Only groups with this status.")
    limit: Limit = MAX_LIMIT
    cursor: Cursor | None = None


@operation("get-task-groups", title="Get task groups", read_only=True, idempotent=True)
async def get_task_groups(store: Store, args: GetTaskGroupsInput) -> Page[TaskGroup]:
    """Read the task groups of a session, oldest first, optionally only those with one status.

    If they do not all fit in one response, truncated is true and next_cursor continues."""
    after = cursor_position(args.cursor, "after_seq", 0)
    async with store.read() as conn:
        rows = await _group_rows(conn, args.session_id, args.status, after, args.limit + 1)
    items, cut = fit_to_budget([TaskGroup.from_row(r) for r in rows[: args.limit]])
    more = cut or len(rows) > args.limit
    next_cursor = encode_cursor({"after_seq": rows[len(items) - 1]["seq"]}) if more and items else None
    return Page[TaskGroup](items=items, next_cursor=next_cursor, truncated=cut)


async def _group_rows(conn: Any, session_id: str, status: str | None, after_seq: int = 0,
                      limit: int = -1) -> list[sqlite3.Row]:
    await require_session(conn, session_id)
    sql = "SELECT * FROM task_groups WHERE session_id = ? AND seq > ?"
    params: tuple[Any, ...] = (session_id, after_seq)
    if status is not None:
        sql += " AND status = ?"
        params += (status,)
    return await fetch_all(conn, sql + " ORDER BY seq LIMIT ?", (*params, limit))


async def list_groups(conn: Any, session_id: str, status: str | None = None) -> list[TaskGroup]:
    return [TaskGroup.from_row(r) for r in await _group_rows(conn, session_id, status)]
