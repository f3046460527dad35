"""Cross-session questions about one project: how its sessions ended, what they cost, what failed."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from baton.models import Input, Output, Project
from baton.operations import operation
from baton.store import Store, fetch_all, fetch_one
from baton.tools._domain import Timestamp
from baton.tools.tokens import TOTAL


class ProjectSummaryInput(Input):
    project: Project
    created_after: Timestamp | None = Field(None, description="Only sessions created at or after this time.")
    created_before: Timestamp | None = Field(None, description="Only sessions created before this time.")
    failed_groups_limit: Annotated[int, Field(ge=0, le=200)] = Field(50, description="Failed groups to list (newest).")


class ProjectTokens(Output):
    total: int = Field(description="Input + output + cache read + cache write tokens of every session.")
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    by_model: dict[str, int]
    by_agent_type: dict[str, int]


class FailedGroup(Output):
    session_id: str
    group_id: str
    name: str
    assigned_to: str | None
    qa_attempts: int
    tl_review_attempts: int
    revision_count: int
    updated_at: str


class ProjectSummary(Output):
    project: str
    sessions: int
    by_status: dict[str, int] = Field(description="Sessions per status.")
    first_session_at: str | None
    last_session_at: str | None
    tokens: ProjectTokens
    failed_groups_total: int
    failed_groups: list[FailedGroup] = Field(description="Newest first, up to failed_groups_limit.")


@operation("project-summary", title="Project summary", profile="full", read_only=True, idempotent=True)
async def project_summary(store: Store, args: ProjectSummaryInput) -> ProjectSummary:
    """One project across its sessions: sessions by status, tokens by model and agent type, failed groups.

    Answers "what did this project cost" and "which groups failed"; read in one snapshot."""
    scope = "project = ?"
    params: list[Any] = [args.project]
    if args.created_after is not None:
        scope += " AND created_at >= ?"
        params.append(args.created_after)
    if args.created_before is not None:
        scope += " AND created_at < ?"
        params.append(args.created_before)
    in_scope = f"session_id IN (SELECT session_id FROM sessions WHERE {scope})"
    async with store.read() as conn:
        statuses = await fetch_all(
            conn, f"SELECT status, count(*) AS n, min(created_at) AS first, max(created_at) AS last FROM sessions"
            f" WHERE {scope} GROUP BY status ORDER BY status", tuple(params))
        sums = await fetch_one(
            conn, "SELECT coalesce(sum(input_tokens), 0) AS i, coalesce(sum(output_tokens), 0) AS o,"
            " coalesce(sum(cache_read_tokens), 0) AS cr, coalesce(sum(cache_write_tokens), 0) AS cw"
            f" FROM token_usage WHERE {in_scope}", tuple(params))
        by: dict[str, dict[str, int]] = {}
        for column in ("model", "agent_type"):
            rows = await fetch_all(
                conn, f"SELECT coalesce({column}, 'unknown') AS k, sum({TOTAL}) AS t FROM token_usage"
                f" WHERE {in_scope} GROUP BY k ORDER BY t DESC, k", tuple(params))
            by[column] = {row["k"]: row["t"] for row in rows}
        failed_total = await fetch_one(
            conn, f"SELECT count(*) FROM task_groups WHERE status = 'failed' AND {in_scope}", tuple(params))
        failed = await fetch_all(
            conn, f"SELECT * FROM task_groups WHERE status = 'failed' AND {in_scope} ORDER BY seq DESC LIMIT ?",
            (*params, args.failed_groups_limit))
    assert sums is not None and failed_total is not None
    return ProjectSummary(
        project=args.project,
        sessions=sum(row["n"] for row in statuses),
        by_status={row["status"]: row["n"] for row in statuses},
        first_session_at=min((row["first"] for row in statuses), default=None),
        last_session_at=max((row["last"] for row in statuses), default=None),
        tokens=ProjectTokens(
            total=sums["i"] + sums["o"] + sums["cr"] + sums["cw"], input_tokens=sums["i"], output_tokens=sums["o"],
            cache_read_tokens=sums["cr"], cache_write_tokens=sums["cw"], by_model=by["model"],
            by_agent_type=by["agent_type"],
        ),
        failed_groups_total=failed_total[0],
        failed_groups=[FailedGroup(**{k: row[k] for k in FailedGroup.model_fields}) for row in failed],
    )
