"""Sessions: one orchestration run, from requirements to a terminal status."""

from __future__ import annotations

import json
import secrets
import sqlite3
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from baton.clock import utc_now
from baton.errors import Conflict, InvalidTransition
from baton.models import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_CHARS,
    MAX_MAX_CHARS,
    Cursor,
    IdempotencyKey,
    Input,
    Limit,
    MaxChars,
    Output,
    Page,
    Project,
    SessionId,
    Text,
)
from baton.operations import (
    RESPONSE_BUDGET_CHARS,
    cursor_position,
    cut_text,
    encode_cursor,
    fit_to_budget,
    json_cost,
    operation,
    require_escaped_fit,
)
from baton.redact import redact
from baton.store import Store, fetch_all, fetch_one, record_request, recorded_request, request_digest
from baton.tools._common import TERMINAL_STATUSES, dump_object, load_json, require_session
from baton.tools._domain import Timestamp

SessionMode = Literal["simple", "parallel"]
SessionStatus = Literal["active", "paused", "completed", "failed", "cancelled"]
# Allowed session transitions; the same status again is always a no-op.
SESSION_TRANSITIONS: dict[str, frozenset[str]] = {
    "active": frozenset({"paused", "completed", "failed", "cancelled"}),
    "paused": frozenset({"active", "completed", "failed", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}


class Session(Output):
    session_id: str
    project: str | None
    mode: SessionMode
    status: SessionStatus
    requirements: str
    initial_branch: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    ended_at: str | None
    status_reason: str | None = None
    completion_forced: bool = Field(False, description="Completed by force with required criteria unmet.")
    truncated: bool = Field(False, description="True when requirements or status_reason was cut to max_chars.")

    @classmethod
    def from_row(cls, row: sqlite3.Row, max_chars: int = MAX_MAX_CHARS) -> Session:
        # Requirements may be 200,000 characters: a session is cut like any long text, so it fits a response;
        # quote-heavy text (and metadata) grows when escaped, so cut further until it does.
        session = cls._cut(row, max_chars)
        while json_cost(session) > RESPONSE_BUDGET_CHARS and (session.requirements or session.status_reason):
            session = cls._cut(row, max(len(session.requirements), len(session.status_reason or "")) // 2)
        return session

    @classmethod
    def _cut(cls, row: sqlite3.Row, max_chars: int) -> Session:
        requirements, cut = cut_text(row["requirements"], max_chars)
        reason, reason_cut = cut_text(row["status_reason"], max_chars)
        return cls(
            session_id=row["session_id"],
            project=row["project"],
            mode=row["mode"],
            status=row["status"],
            requirements=requirements or "",
            truncated=cut or reason_cut,
            initial_branch=row["initial_branch"],
            metadata=load_json(row["metadata"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            ended_at=row["ended_at"],
            status_reason=reason,
            completion_forced=bool(row["completion_forced"]),
        )


class SessionCreated(Session):
    created: bool = Field(description="False when an identical session already existed (a safe retry).")


class CreateSessionInput(Input):
    session_id: SessionId | None = Field(None, description="Omit for a generated unique, sortable id.")
    requirements: Annotated[Text, Field(min_length=1, max_length=200_000, description="What the user asked for.")]
    mode: SessionMode = Field("simple", description="Task groups one at a time (simple) or several at once.")
    project: Project | None = None
    initial_branch: Annotated[str, Field(max_length=250, description="Git branch the work starts from.")] | None = None
    metadata: dict[str, Any] | None = Field(None, description="Free-form object, e.g. {\"testing_mode\": \"full\"}.")
    idempotency_key: IdempotencyKey | None = None


def new_session_id() -> str:
    stamp = utc_now().replace("-", "").replace(":", "").replace(".", "")[:18]  # 20261122T054255123
    return f"bt_{stamp}_{secrets.token_hex(4)}"


@operation("create-session", title="Create session")
async def create_session(store: Store, args: CreateSessionInput) -> SessionCreated:
    """Start an orchestration session.

    Idempotent on session_id: the same payload again returns the existing session with
    created=false; a different payload is a conflict. Without a session_id, an idempotency_key
    makes a retry return the first session instead of a new one.
    """
    metadata = dump_object(args.metadata or {}, "metadata")
    require_escaped_fit(metadata, "metadata")
    requirements, _ = redact(args.requirements)  # users paste keys into requests too
    now = utc_now()
    request_hash = request_digest(args.model_dump(exclude={"idempotency_key"}))
    async with store.write() as conn:
        session_id = args.session_id
        if args.idempotency_key is not None:
            # The session may not exist yet, so this key is scoped to the operation alone (session '').
            first = await recorded_request(conn, "", "create-session", args.idempotency_key)
            if first is not None:
                if first["request_hash"] != request_hash:
                    raise Conflict(f"idempotency_key {args.idempotency_key!r} was already used for create-session "
                                   "with a different payload; use a new key for a new session")
                session_id = json.loads(first["response"])["session_id"]
        session_id = session_id or new_session_id()
        existing = await fetch_one(conn, "SELECT * FROM sessions WHERE session_id = ?", (session_id,))
        if existing is not None:
            same = (
                existing["requirements"] == requirements
                and existing["mode"] == args.mode
                and existing["project"] == args.project
                and existing["initial_branch"] == args.initial_branch
                and load_json(existing["metadata"]) == (args.metadata or {})
            )
            if not same:
                raise Conflict(
                    f"session {session_id!r} already exists with a different payload; "
                    "use get-session to read it or choose another session_id"
                )
            return SessionCreated(**Session.from_row(existing).model_dump(), created=False)
        await conn.execute(
            "INSERT INTO sessions (session_id, project, mode, status, requirements, initial_branch, metadata,"
            " created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?)",
            (session_id, args.project, args.mode, requirements, args.initial_branch, metadata, now, now),
        )
        row = await require_session(conn, session_id)
        if args.idempotency_key is not None:
            await record_request(conn, "", "create-session", args.idempotency_key, request_hash,
                                 {"session_id": session_id})
    return SessionCreated(**Session.from_row(row).model_dump(), created=True)


class GetSessionInput(Input):
    session_id: SessionId
    max_chars: MaxChars = MAX_MAX_CHARS


@operation("get-session", title="Get session", read_only=True, idempotent=True)
async def get_session(store: Store, args: GetSessionInput) -> Session:
    """Read one session (requirements cut to max_chars, with truncated: true when cut)."""
    async with store.read() as conn:
        return Session.from_row(await require_session(conn, args.session_id), args.max_chars)


class ListSessionsInput(Input):
    status: SessionStatus | None = Field(None, description="Only sessions with this status.")
    project: Project | None = Field(None, description="Only this project's sessions.")
    created_after: Timestamp | None = Field(None, description="Only sessions created at or after this time.")
    created_before: Timestamp | None = Field(None, description="Only sessions created before this time.")
    has_failed_groups: bool | None = Field(
        None, description="true: only sessions with a failed task group; false: only those without."
    )
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None
    max_chars: MaxChars = DEFAULT_MAX_CHARS


@operation("list-sessions", title="List sessions", read_only=True, idempotent=True)
async def list_sessions(store: Store, args: ListSessionsInput) -> Page[Session]:
    """List sessions, newest first, filtered by status, project, creation time or failed groups."""
    where: list[str] = ["rowid < ?"]
    params: list[Any] = [cursor_position(args.cursor, "before", 2**62)]
    if args.status is not None:
        where.append("status = ?")
        params.append(args.status)
    if args.project is not None:
        where.append("project = ?")
        params.append(args.project)
    if args.created_after is not None:
        where.append("created_at >= ?")
        params.append(args.created_after)
    if args.created_before is not None:
        where.append("created_at < ?")
        params.append(args.created_before)
    if args.has_failed_groups is not None:
        failed = ("EXISTS (SELECT 1 FROM task_groups g WHERE g.session_id = sessions.session_id"
                  " AND g.status = 'failed')")
        where.append(failed if args.has_failed_groups else f"NOT {failed}")
    sql = f"SELECT rowid, * FROM sessions WHERE {' AND '.join(where)} ORDER BY rowid DESC LIMIT ?"
    async with store.read() as conn:
        rows = await fetch_all(conn, sql, (*params, args.limit + 1))
    items, cut = fit_to_budget([Session.from_row(r, args.max_chars) for r in rows[: args.limit]])
    more = cut or len(rows) > args.limit
    next_cursor = encode_cursor({"before": rows[len(items) - 1]["rowid"]}) if more and items else None
    return Page[Session](items=items, next_cursor=next_cursor, truncated=cut)


class UpdateSessionStatusInput(Input):
    session_id: SessionId
    status: SessionStatus = Field(description="The new status.")
    reason: Annotated[str, Field(max_length=10_000, description="Why; kept with the session.")] | None = None
    force: bool = Field(False, description="Complete with criteria unmet; needs a reason.")

    @model_validator(mode="after")
    def _force_has_a_reason(self) -> UpdateSessionStatusInput:
        if self.force and not (self.reason or "").strip():
            raise ValueError("force needs a reason: it is recorded with the session")
        return self


# How many unmet criteria a refused completion names; the rest are counted.
UNMET_SHOWN = 10


@operation("update-session-status", title="Update session status", idempotent=True)
async def update_session_status(store: Store, args: UpdateSessionStatusInput) -> Session:
    """Move a session to a new status.

    completed needs get-success-criteria's ready_for_completion, unless force with a reason
    (recorded). completed, failed and cancelled are terminal: after them only logs and token usage
    are accepted (marked after_end). The same status again changes nothing.
    """
    async with store.write() as conn:
        row = await require_session(conn, args.session_id)
        current = row["status"]
        if current == args.status:
            return Session.from_row(row)
        if args.status not in SESSION_TRANSITIONS[current]:
            allowed = ", ".join(sorted(SESSION_TRANSITIONS[current])) or "none (terminal)"
            raise InvalidTransition(
                f"session {args.session_id!r} is {current}; it cannot become {args.status} (allowed: {allowed})"
            )
        forced = args.status == "completed" and await _completion_blocked(conn, args.session_id, args.force)
        now = utc_now()
        ended_at = now if args.status in TERMINAL_STATUSES else None
        await conn.execute(
            "UPDATE sessions SET status = ?, status_reason = ?, updated_at = ?, ended_at = ?, completion_forced = ?"
            " WHERE session_id = ?",
            (args.status, args.reason, now, ended_at, int(forced), args.session_id),
        )
        row = await require_session(conn, args.session_id)
    return Session.from_row(row)


async def _completion_blocked(conn: Any, session_id: str, force: bool) -> bool:
    """Whether completing overrides unmet criteria (then it is recorded as forced). Without `force`
    such a completion is refused, naming what is unmet."""
    unmet = await fetch_all(
        conn, "SELECT criterion, status FROM success_criteria WHERE session_id = ? AND required_for_completion"
        " AND status != 'met' ORDER BY criterion_id", (session_id,))
    if unmet:
        listed = "; ".join(f"{cut_text(r['criterion'], 100)[0]!r} ({r['status']})" for r in unmet[:UNMET_SHOWN])
        more = f"; and {len(unmet) - UNMET_SHOWN} more" if len(unmet) > UNMET_SHOWN else ""
        problem = f"{len(unmet)} required success criteria are not met: {listed}{more}; meet them first"
    elif await fetch_one(conn, "SELECT 1 FROM success_criteria WHERE session_id = ? LIMIT 1", (session_id,)):
        return False
    else:
        problem = "it has no success criteria; save and meet them first (save-success-criteria)"
    if force:
        return True
    raise InvalidTransition(
        f"session {session_id!r} cannot be completed: {problem}, or pass force=true with a reason to complete anyway"
    )
