"""Development plans: a session's plan, stored as one row per phase so phases change independently."""

from __future__ import annotations

import json
import sqlite3
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from baton.clock import utc_now
from baton.errors import Conflict, NotFound
from baton.models import DEFAULT_MAX_CHARS, AgentId, IdempotencyKey, Input, MaxChars, Output, SessionId, Text
from baton.operations import RESPONSE_BUDGET_CHARS, cut_text, operation
from baton.store import Store, fetch_all, fetch_one
from baton.tools._common import dump_object, load_json, require_open_session, require_session

PhaseStatus = Literal["pending", "in_progress", "completed", "blocked", "skipped"]
PhaseName = Annotated[Text, Field(max_length=200)]


class PhaseInput(Input):
    name: Annotated[PhaseName, Field(description="Unique in the plan.")]
    description: Annotated[str, Field(max_length=10_000, description="What the phase does.")] | None = None


class SaveDevelopmentPlanInput(Input):
    session_id: SessionId
    plan_text: Annotated[Text, Field(max_length=200_000, description="The plan as the PM wrote it.")]
    phases: Annotated[list[PhaseInput], Field(min_length=1, max_length=100)] = Field(
        description="The phases in order; they are numbered from 1."
    )
    original_prompt: Annotated[str, Field(max_length=200_000)] | None = Field(
        None, description="The request the plan answers.")
    metadata: dict[str, Any] | None = Field(None, description="Free-form object.")

    @model_validator(mode="after")
    def _unique_names(self) -> SaveDevelopmentPlanInput:
        names = [phase.name for phase in self.phases]
        if len(set(names)) != len(names):
            raise ValueError("phase names must be unique within a plan")
        return self


class PlanPhase(Output):
    phase_number: int
    name: str
    description: str | None
    status: PhaseStatus
    notes: str | None
    updated_by: str | None
    started_at: str | None
    completed_at: str | None
    updated_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> PlanPhase:
        return cls(**{name: row[name] for name in cls.model_fields})


class DevelopmentPlan(Output):
    plan_id: int
    session_id: str
    original_prompt: str | None
    plan_text: str
    metadata: dict[str, Any]
    phases: list[PlanPhase]
    completed: int = Field(description="Phases completed or skipped.")
    total: int
    current_phase: int | None = Field(description="The first phase not completed or skipped; null when all are.")
    truncated: bool = Field(description="True when the plan text, prompt or a phase's description/notes was cut.")
    created_at: str
    updated_at: str


class PlanSaved(DevelopmentPlan):
    created: bool = Field(description="False when an identical plan already existed (a safe retry).")


async def _read_plan(conn: Any, session_id: str, max_chars: int) -> DevelopmentPlan:
    plan = await fetch_one(conn, "SELECT * FROM development_plans WHERE session_id = ?", (session_id,))
    if plan is None:
        await require_session(conn, session_id)
        raise NotFound(f"session {session_id!r} has no development plan; save one with save-development-plan")
    rows = await fetch_all(conn, "SELECT * FROM plan_phases WHERE plan_id = ? ORDER BY phase_number",
                           (plan["plan_id"],))
    # Up to 100 phases with long descriptions and notes must still fit one response: each phase's
    # text gets an equal share of the budget (and never more than max_chars).
    phase_chars = min(max_chars, max(100, RESPONSE_BUDGET_CHARS // (3 * max(1, len(rows)))))
    text_chars = min(max_chars, RESPONSE_BUDGET_CHARS // 4)
    cut_any = False
    phases = []
    for row in rows:
        data = {name: row[name] for name in PlanPhase.model_fields}
        for field in ("description", "notes"):
            data[field], cut = cut_text(data[field], phase_chars)
            cut_any = cut_any or cut
        phases.append(PlanPhase(**data))
    done = [p for p in phases if p.status in ("completed", "skipped")]
    current = next((p.phase_number for p in phases if p.status not in ("completed", "skipped")), None)
    plan_text, cut1 = cut_text(plan["plan_text"], text_chars)
    prompt, cut2 = cut_text(plan["original_prompt"], text_chars)
    return DevelopmentPlan(
        plan_id=plan["plan_id"], session_id=session_id, original_prompt=prompt, plan_text=plan_text or "",
        metadata=load_json(plan["metadata"]), phases=phases, completed=len(done), total=len(phases),
        current_phase=current, truncated=cut_any or cut1 or cut2, created_at=plan["created_at"],
        updated_at=plan["updated_at"],
    )


@operation("save-development-plan", title="Save development plan", profile="full", idempotent=True)
async def save_development_plan(store: Store, args: SaveDevelopmentPlanInput) -> PlanSaved:
    """Store a session's development plan and its phases (numbered from 1, all pending).

    One plan per session: the same payload again returns it with created=false; a different plan
    is a conflict. Change phases with update-plan-phase, never by rewriting the plan."""
    metadata = dump_object(args.metadata or {}, "metadata")
    now = utc_now()
    async with store.write() as conn:
        await require_session(conn, args.session_id)
        existing = await fetch_one(conn, "SELECT * FROM development_plans WHERE session_id = ?", (args.session_id,))
        if existing is not None:
            phases = await fetch_all(conn, "SELECT name, description FROM plan_phases WHERE plan_id = ?"
                                     " ORDER BY phase_number", (existing["plan_id"],))
            same = (
                existing["plan_text"] == args.plan_text
                and existing["original_prompt"] == args.original_prompt
                and json.loads(existing["metadata"]) == (args.metadata or {})
                and [(r["name"], r["description"]) for r in phases] == [(p.name, p.description) for p in args.phases]
            )
            if not same:
                raise Conflict(
                    f"session {args.session_id!r} already has a different development plan; "
                    "change its phases with update-plan-phase"
                )
            plan = await _read_plan(conn, args.session_id, DEFAULT_MAX_CHARS)
            return PlanSaved(**plan.model_dump(), created=False)
        await require_open_session(conn, args.session_id, "development plans")
        cursor = await conn.execute(
            "INSERT INTO development_plans (session_id, original_prompt, plan_text, metadata, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (args.session_id, args.original_prompt, args.plan_text, metadata, now, now),
        )
        await conn.executemany(
            "INSERT INTO plan_phases (plan_id, phase_number, name, description, updated_at) VALUES (?, ?, ?, ?, ?)",
            [(cursor.lastrowid, number, p.name, p.description, now) for number, p in enumerate(args.phases, 1)],
        )
        plan = await _read_plan(conn, args.session_id, DEFAULT_MAX_CHARS)
    return PlanSaved(**plan.model_dump(), created=True)


class GetDevelopmentPlanInput(Input):
    session_id: SessionId
    max_chars: MaxChars = DEFAULT_MAX_CHARS


@operation("get-development-plan", title="Get development plan", profile="full", read_only=True, idempotent=True)
async def get_development_plan(store: Store, args: GetDevelopmentPlanInput) -> DevelopmentPlan:
    """Read a session's plan with every phase's status and the current phase."""
    async with store.read() as conn:
        return await _read_plan(conn, args.session_id, args.max_chars)


class UpdatePlanPhaseInput(Input):
    session_id: SessionId
    phase_number: Annotated[int, Field(ge=1, description="The phase, numbered from 1.")] | None = None
    phase_name: PhaseName | None = Field(None, description="Instead of phase_number: the phase's exact name.")
    status: PhaseStatus | None = Field(None, description="The new status.")
    notes: Annotated[str, Field(max_length=20_000, description="Replaces the phase's notes.")] | None = None
    updated_by: AgentId | None = Field(None, description="The agent making the change.")
    expected_status: PhaseStatus | None = Field(
        None, description="Compare-and-set: conflict unless the phase currently has this status."
    )
    idempotency_key: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _valid(self) -> UpdatePlanPhaseInput:
        if (self.phase_number is None) == (self.phase_name is None):
            raise ValueError("give exactly one of phase_number or phase_name")
        if self.status is None and self.notes is None:
            raise ValueError("nothing to update: give status and/or notes")
        return self


@operation("update-plan-phase", title="Update plan phase", profile="full")
async def update_plan_phase(store: Store, args: UpdatePlanPhaseInput) -> PlanPhase:
    """Change one phase of the plan (status, notes) in one atomic statement.

    Other phases are untouched, so agents updating different phases never overwrite each other.
    expected_status makes the change conditional (conflict if the phase moved on). With an
    idempotency_key a retry returns the first result (and is not refused because the phase moved on)."""
    by_number = args.phase_number is not None
    key_sql, key = ("phase_number = :key", args.phase_number) if by_number else ("name = :key", args.phase_name)
    now = utc_now()
    sets = ["updated_at = :now", "updated_by = coalesce(:by, updated_by)"]
    params: dict[str, Any] = {"now": now, "by": args.updated_by, "key": key, "session_id": args.session_id}
    if args.status is not None:
        sets += [
            "status = :status",
            "started_at = CASE WHEN :status = 'in_progress' THEN coalesce(started_at, :now) ELSE started_at END",
            "completed_at = CASE WHEN :status = 'completed' THEN :now ELSE NULL END",
        ]
        params["status"] = args.status
    if args.notes is not None:
        sets.append("notes = :notes")
        params["notes"] = args.notes
    where = f"plan_id = (SELECT plan_id FROM development_plans WHERE session_id = :session_id) AND {key_sql}"
    if args.expected_status is not None:
        where += " AND status = :expected"
        params["expected"] = args.expected_status
    async with store.write() as conn:

        async def write() -> dict[str, Any]:
            await require_open_session(conn, args.session_id, "plan changes")
            row = await fetch_one(conn, f"UPDATE plan_phases SET {', '.join(sets)} WHERE {where} RETURNING *", params)
            if row is None:
                plan = await _read_plan(conn, args.session_id, 50)
                phase = next((p for p in plan.phases if key in (p.phase_number, p.name)), None)
                if phase is None:
                    raise NotFound(f"the plan of session {args.session_id!r} has no phase {key!r} "
                                   f"(phases 1-{plan.total}); see get-development-plan")
                raise Conflict(f"phase {phase.phase_number} is {phase.status}, not the expected "
                               f"{args.expected_status}; re-read the plan and decide again")
            await conn.execute("UPDATE development_plans SET updated_at = ? WHERE session_id = ?",
                               (now, args.session_id))
            return PlanPhase.from_row(row).model_dump()

        result, _ = await store.idempotent(
            conn, session_id=args.session_id, operation="update-plan-phase", key=args.idempotency_key,
            payload=args.model_dump(exclude={"idempotency_key"}), write=write,
        )
    return PlanPhase.model_validate(result)
