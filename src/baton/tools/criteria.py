"""Success criteria: what must be true before a session may complete."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from baton.clock import utc_now
from baton.errors import NotFound
from baton.models import Input, Items, Output, SessionId, Text
from baton.operations import operation
from baton.store import Store, fetch_all, fetch_one
from baton.tools._common import require_session

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
    criterion: CriterionText
    required_for_completion: bool = True


class SaveSuccessCriteriaInput(Input):
    session_id: SessionId
    criteria: Annotated[list[CriterionInput], Field(min_length=1, max_length=200)]


@operation("save-success-criteria", title="Save success criteria", idempotent=True)
async def save_success_criteria(store: Store, args: SaveSuccessCriteriaInput) -> Items[Criterion]:
    """Add success criteria to a session and return all of them.

    Adds only: a criterion whose exact text already exists is kept as it is (status and evidence
    untouched), never replaced wholesale.
    """
    now = utc_now()
    async with store.write() as conn:
        await require_session(conn, args.session_id)
        await conn.executemany(
            "INSERT INTO success_criteria (session_id, criterion, required_for_completion, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id, criterion) DO NOTHING",
            [(args.session_id, c.criterion, int(c.required_for_completion), now, now) for c in args.criteria],
        )
        rows = await fetch_all(conn, "SELECT * FROM success_criteria WHERE session_id = ? ORDER BY criterion_id",
                               (args.session_id,))
    return Items[Criterion](items=[Criterion.from_row(r) for r in rows])


class UpdateSuccessCriterionInput(Input):
    session_id: SessionId
    criterion_id: Annotated[int, Field(ge=1)] | None = None
    criterion: CriterionText | None = Field(None, description="Exact text, when criterion_id is not known.")
    status: CriterionStatus
    actual: Annotated[str, Field(max_length=10_000)] | None = None
    evidence: Annotated[str, Field(max_length=10_000)] | None = None

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
    for name in ("actual", "evidence"):
        if name in args.model_fields_set:
            changes[name] = getattr(args, name)
    async with store.write() as conn:
        await require_session(conn, args.session_id)
        sql = f"SELECT * FROM success_criteria WHERE session_id = ? AND {where}"
        row = await fetch_one(conn, sql, (args.session_id, *key))
        if row is None:
            raise NotFound(
                f"no success criterion {key[0]!r} in session {args.session_id!r}; see get-success-criteria"
            )
        await conn.execute(
            f"UPDATE success_criteria SET {', '.join(f'{c} = ?' for c in changes)} WHERE criterion_id = ?",
            (*changes.values(), row["criterion_id"]),
        )
        updated = await fetch_one(conn, "SELECT * FROM success_criteria WHERE criterion_id = ?",
                                  (row["criterion_id"],))
    assert updated is not None
    return Criterion.from_row(updated)


class CriteriaSummary(Output):
    items: list[Criterion]
    met: int
    total: int
    required_unmet: int = Field(description="How many required criteria are not met yet.")
    ready_for_completion: bool


class GetSuccessCriteriaInput(Input):
    session_id: SessionId


async def criteria_summary(conn: Any, session_id: str) -> CriteriaSummary:
    rows = await fetch_all(conn, "SELECT * FROM success_criteria WHERE session_id = ? ORDER BY criterion_id",
                           (session_id,))
    items = [Criterion.from_row(r) for r in rows]
    required_unmet = sum(1 for c in items if c.required_for_completion and c.status != "met")
    return CriteriaSummary(
        items=items,
        met=sum(1 for c in items if c.status == "met"),
        total=len(items),
        required_unmet=required_unmet,
        ready_for_completion=bool(items) and required_unmet == 0,
    )


@operation("get-success-criteria", title="Get success criteria", read_only=True, idempotent=True)
async def get_success_criteria(store: Store, args: GetSuccessCriteriaInput) -> CriteriaSummary:
    """Read a session's success criteria with met/total counts and whether it is ready to complete."""
    async with store.read() as conn:
        await require_session(conn, args.session_id)
        return await criteria_summary(conn, args.session_id)
