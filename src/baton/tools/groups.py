"""Task groups: the units of work of a session, their status, reviews and counters."""

from __future__ import annotations

import json
import sqlite3
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

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
from baton.tools._common import load_json, require_session

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

Specializations = Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]], Field(max_length=50)]


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
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TaskGroup:
        data = {name: row[name] for name in cls.model_fields if name in row.keys()}  # noqa: SIM118 (sqlite3.Row)
        data["specializations"] = load_json(row["specializations"])
        data["depends_on"] = load_json(row["depends_on"])
        data["security_sensitive"] = bool(row["security_sensitive"])
        return cls(**data)


class TaskGroupCreated(TaskGroup):
    created: bool = Field(description="False when an identical group already existed (a safe retry).")


class CreateTaskGroupInput(Input):
    session_id: SessionId
    group_id: NewGroupId
    name: Annotated[Text, Field(max_length=500)]
    status: GroupStatus = "pending"
    assigned_to: Annotated[str, Field(max_length=128)] | None = None
    complexity: Annotated[int, Field(ge=1, le=10)] | None = None
    initial_tier: Tier | None = None
    specializations: Specializations | None = None
    item_count: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    component_path: Annotated[str, Field(max_length=1000)] | None = None
    security_sensitive: bool = False
    depends_on: Annotated[list[GroupId], Field(max_length=100)] | None = None


@operation("create-task-group", title="Create task group")
async def create_task_group(store: Store, args: CreateTaskGroupInput) -> TaskGroupCreated:
    """Add a task group to a session.

    Idempotent on (session_id, group_id): the same payload again (as first sent, or matching the
    group as it is now) returns the existing group with created=false; a different payload is a conflict.
    """
    values = args.model_dump(exclude={"session_id", "group_id"})
    values["specializations"] = json.dumps(args.specializations or [])
    values["depends_on"] = json.dumps(args.depends_on or [])
    values["security_sensitive"] = int(args.security_sensitive)
    # The creating payload is recorded, so a retry after a lost answer is recognised even when the
    # group has been updated since (its status moved on): comparing with the current values alone
    # called that retry a conflict.
    request_hash = request_digest(values)
    now = utc_now()
    async with store.write() as conn:
        await require_session(conn, args.session_id)
        existing = await fetch_one(
            conn, "SELECT * FROM task_groups WHERE session_id = ? AND group_id = ?", (args.session_id, args.group_id)
        )
        if existing is not None:
            creation = await recorded_request(conn, args.session_id, "create-task-group", args.group_id)
            as_first_sent = creation is not None and creation["request_hash"] == request_hash
            if not as_first_sent and any(existing[k] != v for k, v in values.items()):
                raise Conflict(
                    f"task group {args.group_id!r} already exists in session {args.session_id!r} with different "
                    "values; use update-task-group to change it"
                )
            return TaskGroupCreated(**TaskGroup.from_row(existing).model_dump(), created=False)
        row = {"session_id": args.session_id, "group_id": args.group_id, **values, "created_at": now, "updated_at": now}
        await conn.execute(
            f"INSERT INTO task_groups ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", tuple(row.values())
        )
        created = await _require_group(conn, args.session_id, args.group_id)
        await record_request(conn, args.session_id, "create-task-group", args.group_id, request_hash, {})
    return TaskGroupCreated(**TaskGroup.from_row(created).model_dump(), created=True)


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
    status: GroupStatus | None = None
    assigned_to: Annotated[str, Field(max_length=128)] | None = None
    name: Annotated[Text, Field(max_length=500)] | None = None
    complexity: Annotated[int, Field(ge=1, le=10)] | None = None
    review_status: ReviewStatus | None = None
    merge_status: MergeStatus | None = None
    feature_branch: Annotated[str, Field(max_length=250)] | None = None
    specializations: Specializations | None = None
    security_sensitive: bool | None = None
    increment: dict[Counter, Annotated[int, Field(ge=-1000, le=1000)]] | None = Field(
        None, description='Counters to add to atomically, e.g. {"qa_attempts": 1}.'
    )
    expected_status: GroupStatus | None = Field(
        None, description="Compare-and-set: fail with conflict unless the group currently has this status."
    )
    idempotency_key: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> UpdateTaskGroupInput:
        if not self.model_fields_set - {"session_id", "group_id", "expected_status", "idempotency_key"}:
            raise ValueError("nothing to update: give at least one field or an increment")
        return self


@operation("update-task-group", title="Update task group")
async def update_task_group(store: Store, args: UpdateTaskGroupInput) -> TaskGroup:
    """Change a task group's fields and add to its counters atomically.

    Status changes follow the transition table (invalid_transition otherwise); expected_status
    makes the update conditional (conflict if the current status differs). Counters change only
    through increment.
    """
    fields = args.model_dump(
        exclude_unset=True, exclude={"session_id", "group_id", "increment", "expected_status", "idempotency_key"}
    )
    if "specializations" in fields:
        fields["specializations"] = json.dumps(fields["specializations"])
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
            target = fields.get("status")
            if target is not None and target != current and target not in GROUP_TRANSITIONS[current]:
                allowed = ", ".join(GROUP_TRANSITIONS[current]) or "none (terminal)"
                raise InvalidTransition(
                    f"task group {args.group_id!r} is {current}; it cannot become {target} (allowed: {allowed})"
                )
            assignments = [f"{column} = ?" for column in fields]
            params: list[Any] = list(fields.values())
            for counter, delta in (args.increment or {}).items():
                assignments.append(f"{counter} = {counter} + ?")
                params.append(delta)
            assignments.append("updated_at = ?")
            params.append(utc_now())
            await conn.execute(
                f"UPDATE task_groups SET {', '.join(assignments)} WHERE session_id = ? AND group_id = ?",
                (*params, args.session_id, args.group_id),
            )
            updated = await _require_group(conn, args.session_id, args.group_id)
            return TaskGroup.from_row(updated).model_dump(mode="json")

        result, _ = await store.idempotent(
            conn, session_id=args.session_id, operation="update-task-group", key=args.idempotency_key,
            payload=args.model_dump(exclude={"idempotency_key"}), write=write,
        )
    return TaskGroup(**result)


class GetTaskGroupsInput(Input):
    session_id: SessionId
    status: GroupStatus | None = None
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
