"""Success criteria: what must be true before a session may complete."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from baton.clock import utc_now
from baton.errors import NotFound
from baton.models import MAX_LIMIT, Cursor, Input, Limit, Output, Page, SessionId, Text
from baton.operations import RESPONSE_BUDGET_CHARS, cursor_position, encode_cursor, fit_to_budget, operation
from baton.redact import redact
from baton.store import Store, fetch_all, fetch_one
from baton.tools._common import TERMINAL_STATUSES, require_open_session, require_session

CriterionStatus = Literal["pending", "met", "blocked", "failed"]
CriterionText = Annotated[Text, Field(max_length=2000)]


class Criterion(Output):
    criterion_id: int
    session_id: str
    criterion: str
    status: CriterionStatus
    actual: str | None
    evidence: str | None
    required_for_completion: bool
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Criterion:
        data = {name: row[name] for name in cls.model_fields}
        data["required_for_completion"] = bool(row["required_for_completion"])
        return cls(**data)


class CriterionInput(Input):
    criterion: Annotated[CriterionText, Field(description="What must be true, e.g. all tests pass.")]
    required_for_completion: bool = Field(True, description="false: completing the session does not wait for it.")


class SaveSuccessCriteriaInput(Input):
    session_id: SessionId
    criteria: Annotated[list[CriterionInput], Field(min_length=1, max_length=200, description="The criteria to add.")]


@operation("save-success-criteria", title="Save success criteria", idempotent=True)
async def save_success_criteria(store: Store, args: SaveSuccessCriteriaInput) -> Page[Criterion]:
    """Add success criteria to a session and return all of them.

    Adds only: a criterion whose exact text already exists is kept as it is (status and evidence
    untouched). If they do not all fit in one response, truncated is true and next_cursor continues
    with get-success-criteria.
    """
    now = utc_now()
    async with store.write() as conn:
        await require_session(conn, args.session_id)
        if await _adds_any(conn, args.session_id, args.criteria):  # saving again what is there changes nothing
            await require_open_session(conn, args.session_id, "new success criteria")
            await conn.executemany(
                "INSERT INTO success_criteria (session_id, criterion, required_for_completion, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id, criterion) DO NOTHING",
                [(args.session_id, c.criterion, int(c.required_for_completion), now, now) for c in args.criteria],
            )
        rows = await fetch_all(conn, "SELECT * FROM success_criteria WHERE session_id = ? ORDER BY criterion_id",
                               (args.session_id,))
    items, cut = fit_to_budget([Criterion.from_row(r) for r in rows])
    next_cursor = encode_cursor({"after": items[-1].criterion_id}) if cut else None
    return Page[Criterion](items=items, next_cursor=next_cursor, truncated=cut)


class UpdateSuccessCriterionInput(Input):
    session_id: SessionId
    criterion_id: Annotated[int, Field(ge=1, description="From save-success-criteria.")] | None = None
    criterion: CriterionText | None = Field(None, description="Exact text, when criterion_id is not known.")
    status: CriterionStatus = Field(description="The new status.")
    actual: Annotated[str, Field(max_length=10_000, description="What was observed.")] | None = None
    evidence: Annotated[str, Field(max_length=10_000, description="Proof, e.g. a CI run.")] | None = None

    @model_validator(mode="after")
    def _one_key(self) -> UpdateSuccessCriterionInput:
        if (self.criterion_id is None) == (self.criterion is None):
            raise ValueError("give exactly one of criterion_id or criterion (its exact text)")
        return self


@operation("update-success-criterion", title="Update success criterion", idempotent=True)
async def update_success_criterion(store: Store, args: UpdateSuccessCriterionInput) -> Criterion:
    """Set one criterion's status, with what was actually observed and the evidence."""
    key: tuple[Any, ...]
    if args.criterion_id is not None:
        where, key = "criterion_id = ?", (args.criterion_id,)
    else:
        where, key = "criterion = ?", (args.criterion,)
    changes: dict[str, Any] = {"status": args.status, "updated_at": utc_now()}
    for name in ("actual", "evidence"):  # free text: what was observed may quote a secret
        if name in args.model_fields_set:
            value = getattr(args, name)
            changes[name] = None if value is None else redact(value)[0]
    async with store.write() as conn:
        session = await require_session(conn, args.session_id)
        sql = f"SELECT * FROM success_criteria WHERE session_id = ? AND {where}"
        row = await fetch_one(conn, sql, (args.session_id, *key))
        if row is None:
            raise NotFound(
                f"no success criterion {key[0]!r} in session {args.session_id!r}; see get-success-criteria"
            )
        if session["status"] in TERMINAL_STATUSES:
            # A retry that would change nothing still answers; a change is refused.
            if all(row[column] == value for column, value in changes.items() if column != "updated_at"):
                return Criterion.from_row(row)
            await require_open_session(conn, args.session_id, "criteria changes")
        await conn.execute(
            f"UPDATE success_criteria SET {', '.join(f'{c} = ?' for c in changes)} WHERE criterion_id = ?",
            (*changes.values(), row["criterion_id"]),
        )
        updated = await fetch_one(conn, "SELECT * FROM success_criteria WHERE criterion_id = ?",
                                  (row["criterion_id"],))
    assert updated is not None
    return Criterion.from_row(updated)


async def _adds_any(conn: Any, session_id: str, criteria: list[CriterionInput]) -> bool:
    texts = [c.criterion for c in criteria]
    rows = await fetch_all(conn, f"SELECT criterion FROM success_criteria WHERE session_id = ? AND criterion IN"
                                 f" ({', '.join('?' for _ in texts)})", (session_id, *texts))
    return len({r[0] for r in rows}) < len(set(texts))


class CriteriaSummary(Output):
    items: list[Criterion]
    met: int
    total: int
    required_unmet: int = Field(description="How many required criteria are not met yet.")
    ready_for_completion: bool
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the rest of the items; null at the end.")
    truncated: bool = Field(False, description="True when items were cut short to stay within the response budget.")


class GetSuccessCriteriaInput(Input):
    session_id: SessionId
    limit: Limit = MAX_LIMIT
    cursor: Cursor | None = None


async def criteria_summary(conn: Any, session_id: str, after_id: int = 0, limit: int = MAX_LIMIT,
                           budget: int = RESPONSE_BUDGET_CHARS, at_least_one: bool = True) -> CriteriaSummary:
    """Counts over all of a session's criteria; the items from `after_id` on, as many as fit `budget`."""
    counts = await fetch_one(
        conn,
        "SELECT count(*) AS total, coalesce(sum(status = 'met'), 0) AS met,"
        " coalesce(sum(required_for_completion AND status != 'met'), 0) AS required_unmet"
        " FROM success_criteria WHERE session_id = ?",
        (session_id,),
    )
    assert counts is not None
    rows = await fetch_all(
        conn,
        "SELECT * FROM success_criteria WHERE session_id = ? AND criterion_id > ? ORDER BY criterion_id LIMIT ?",
        (session_id, after_id, limit + 1),
    )
    items, cut = fit_to_budget([Criterion.from_row(r) for r in rows[:limit]], budget, at_least_one=at_least_one)
    more = cut or len(rows) > limit
    return CriteriaSummary(
        items=items,
        met=counts["met"],
        total=counts["total"],
        required_unmet=counts["required_unmet"],
        ready_for_completion=counts["total"] > 0 and counts["required_unmet"] == 0,
        next_cursor=encode_cursor({"after": items[-1].criterion_id}) if more and items else None,
        truncated=cut,
    )


@operation("get-success-criteria", title="Get success criteria", read_only=True, idempotent=True)
async def get_success_criteria(store: Store, args: GetSuccessCriteriaInput) -> CriteriaSummary:
    """Read a session's success criteria with met/total counts and whether it is ready to complete.

    The counts cover every criterion; if the items do not all fit in one response, truncated is true
    and next_cursor continues."""
    async with store.read() as conn:
        await require_session(conn, args.session_id)
        return await criteria_summary(conn, args.session_id, cursor_position(args.cursor, "after", 0), args.limit)
