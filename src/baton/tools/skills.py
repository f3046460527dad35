"""Skill outputs: the structured result of each run of a skill, numbered per skill, agent and group."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field

from baton.clock import utc_now
from baton.errors import NotFound
from baton.models import AgentType, GroupScope, IdempotencyKey, Input, Output, SessionId
from baton.operations import operation
from baton.redact import redact
from baton.store import Store, fetch_one
from baton.tools._common import dump_object, require_open_session, require_session

SkillName = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
               description="e.g. lint-check, security-scan, test-coverage.")
]


class SaveSkillOutputInput(Input):
    session_id: SessionId
    skill_name: SkillName
    output: dict[str, Any] = Field(description="The skill's result as a JSON object (secrets are redacted).")
    agent_type: AgentType | None = None
    group_id: GroupScope = "global"
    idempotency_key: IdempotencyKey | None = None


class SkillOutputSaved(Output):
    output_id: int
    iteration: int = Field(description="1 for the first run of this skill by this agent on this group, then 2, ...")
    redacted: bool
    idempotent: bool


@operation("save-skill-output", title="Save skill output", profile="full")
async def save_skill_output(store: Store, args: SaveSkillOutputInput) -> SkillOutputSaved:
    """Store one run's output of a skill; the iteration number is assigned atomically.

    Iterations count per (session, skill, agent_type, group_id), so concurrent runs get distinct
    numbers and none is lost."""
    text, was_redacted = redact(dump_object(args.output, "output"))
    if was_redacted and not _still_json(text):
        text = json.dumps({"_redacted_json": text})
    agent_type = args.agent_type or ""
    async with store.write() as conn:
        await require_session(conn, args.session_id)

        async def write() -> dict[str, Any]:
            await require_open_session(conn, args.session_id, "skill outputs")
            # One statement computes and claims the number; the UNIQUE constraint backs it up.
            row = await fetch_one(
                conn,
                "INSERT INTO skill_outputs (session_id, skill_name, agent_type, group_id, iteration, output,"
                " redacted, created_at)"
                " SELECT :s, :skill, :agent, :group, coalesce(max(iteration), 0) + 1, :output, :redacted, :now"
                " FROM skill_outputs WHERE session_id = :s AND skill_name = :skill AND agent_type = :agent"
                " AND group_id = :group RETURNING output_id, iteration",
                {"s": args.session_id, "skill": args.skill_name, "agent": agent_type,
                 "group": args.group_id, "output": text, "redacted": int(was_redacted), "now": utc_now()},
            )
            assert row is not None
            return {"output_id": row["output_id"], "iteration": row["iteration"], "redacted": was_redacted}

        result, replayed = await store.idempotent(
            conn, session_id=args.session_id, operation="save-skill-output", key=args.idempotency_key,
            payload=args.model_dump(exclude={"idempotency_key"}), write=write,
        )
    return SkillOutputSaved(**result, idempotent=replayed)


def _still_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class GetSkillOutputInput(Input):
    session_id: SessionId
    skill_name: SkillName
    agent_type: AgentType | None = Field(None, description="Only this agent's runs (default: any agent).")
    group_id: GroupScope | None = Field(None, description="Only runs on this group (default: any group).")
    iteration: Annotated[int, Field(ge=1)] | None = Field(None, description="A specific run (default: the latest).")


class SkillOutput(Output):
    output_id: int
    session_id: str
    skill_name: str
    agent_type: str | None
    group_id: str
    iteration: int
    output: dict[str, Any]
    redacted: bool
    created_at: str


@operation("get-skill-output", title="Get skill output", profile="full", read_only=True, idempotent=True)
async def get_skill_output(store: Store, args: GetSkillOutputInput) -> SkillOutput:
    """Read a skill's latest output (or one iteration), optionally for one agent type and group."""
    where = ["session_id = ?", "skill_name = ?"]
    params: list[Any] = [args.session_id, args.skill_name]
    if args.agent_type is not None:
        where.append("agent_type = ?")
        params.append(args.agent_type)
    for column in ("group_id", "iteration"):
        if getattr(args, column) is not None:
            where.append(f"{column} = ?")
            params.append(getattr(args, column))
    async with store.read() as conn:
        await require_session(conn, args.session_id)
        row = await fetch_one(
            conn, f"SELECT * FROM skill_outputs WHERE {' AND '.join(where)} ORDER BY output_id DESC LIMIT 1",
            tuple(params),
        )
    if row is None:
        raise NotFound(f"no output of skill {args.skill_name!r} matches in session {args.session_id!r}; "
                       "save one with save-skill-output")
    output = json.loads(row["output"])
    return SkillOutput(
        output_id=row["output_id"], session_id=row["session_id"], skill_name=row["skill_name"],
        agent_type=row["agent_type"] or None, group_id=row["group_id"], iteration=row["iteration"],
        output=output if isinstance(output, dict) else {"value": output}, redacted=bool(row["redacted"]),
        created_at=row["created_at"],
    )
