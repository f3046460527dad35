"""The dashboard snapshot and the health check."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

from pydantic import Field

from baton import __version__
from baton.clock import utc_now
from baton.models import DEFAULT_MAX_CHARS, Input, MaxChars, Output, SessionId
from baton.operations import RESPONSE_BUDGET_CHARS, fit_to_budget, json_cost, operation
from baton.store import Store, fetch_all, fetch_one
from baton.tools._common import require_session
from baton.tools.criteria import CriteriaSummary, criteria_summary
from baton.tools.groups import TaskGroup, list_groups
from baton.tools.logs import LogEntry, recent_logs
from baton.tools.sessions import Session
from baton.tools.state import latest_state
from baton.tools.tokens import token_summary_of

# A state object bigger than this is replaced in the snapshot by a pointer to get-state, so the
# snapshot stays within one response.
SNAPSHOT_STATE_CHARS = 6000
# The snapshot's lists share what the session and the two states leave of the response budget (JSON
# characters as escaped in the text copy), with this much kept for the counts and totals.
FIXED_PARTS_CHARS = 4000
# Tokens per agent type: a handful of keys normally; the largest ones when there are thousands.
TOKENS_BUDGET = 2000


class GroupsView(Output):
    items: list[TaskGroup]
    by_status: dict[str, int]


class TokensView(Output):
    total: int
    by_agent_type: dict[str, int]


class Snapshot(Output):
    session: Session
    orchestrator_state: dict[str, Any] | None
    pm_state: dict[str, Any] | None
    task_groups: GroupsView
    success_criteria: CriteriaSummary
    token_summary: TokensView
    recent_logs: list[LogEntry] = Field(description="Newest first.")
    reasoning: dict[str, int] = Field(description="Reasoning entries per phase.")
    counts: dict[str, int]
    generated_at: str
    truncated: bool = Field(
        False, description="True when a list was cut to fit one response (counts and totals still cover everything); "
        "read it in full with get-task-groups, get-success-criteria or get-logs.",
    )


class DashboardSnapshotInput(Input):
    session_id: SessionId
    log_limit: Annotated[int, Field(ge=0, le=100, description="How many recent logs to include.")] = 10
    max_chars: MaxChars = DEFAULT_MAX_CHARS


async def _state_for_snapshot(conn: Any, session_id: str, state_type: str) -> dict[str, Any] | None:
    saved = await latest_state(conn, session_id, state_type)
    if saved is None:
        return None
    if len(saved.model_dump_json()) > SNAPSHOT_STATE_CHARS:
        return {"_omitted": f"state too large for the snapshot; read it with get-state (version {saved.version})"}
    return saved.state


@operation("dashboard-snapshot", title="Dashboard snapshot", read_only=True, idempotent=True)
async def dashboard_snapshot(store: Store, args: DashboardSnapshotInput) -> Snapshot:
    """Everything a dashboard shows for one session, in one consistent read transaction:
    session, latest PM and orchestrator state, task groups, success criteria, token totals,
    recent logs, reasoning by phase and row counts."""
    async with store.read() as conn:
        # The requirements are in get-session; the snapshot keeps their opening.
        session = Session.from_row(await require_session(conn, args.session_id), min(args.max_chars, DEFAULT_MAX_CHARS))
        groups = await list_groups(conn, args.session_id)
        by_status: dict[str, int] = {}
        for group in groups:
            by_status[group.status] = by_status.get(group.status, 0) + 1
        orchestrator_state = await _state_for_snapshot(conn, args.session_id, "orchestrator")
        pm_state = await _state_for_snapshot(conn, args.session_id, "pm")
        fixed = json_cost(session) + len(json.dumps(json.dumps([orchestrator_state, pm_state]))) + FIXED_PARTS_CHARS
        share = max(0, RESPONSE_BUDGET_CHARS - fixed) // 3
        shown_groups, groups_cut = fit_to_budget(groups, share, at_least_one=False)
        criteria = await criteria_summary(conn, args.session_id, budget=share, at_least_one=False)
        logs, logs_cut = fit_to_budget(await recent_logs(conn, args.session_id, args.log_limit, args.max_chars),
                                       share, at_least_one=False)
        tokens = await token_summary_of(conn, args.session_id, "agent_type", TOKENS_BUDGET)
        phases = await fetch_all(
            conn,
            "SELECT phase, count(*) AS n FROM logs WHERE session_id = ? AND log_type = 'reasoning' GROUP BY phase",
            (args.session_id,),
        )
        counts_row = await fetch_one(
            conn,
            "SELECT (SELECT count(*) FROM logs WHERE session_id = :s AND log_type = 'interaction') AS interactions,"
            " (SELECT count(*) FROM logs WHERE session_id = :s AND log_type = 'reasoning') AS reasoning,"
            " (SELECT count(*) FROM logs WHERE session_id = :s AND log_type = 'event') AS events,"
            " (SELECT count(*) FROM token_usage WHERE session_id = :s) AS token_records,"
            " (SELECT count(*) FROM state_snapshots WHERE session_id = :s) AS state_versions",
            {"s": args.session_id},
        )
        assert counts_row is not None
        return Snapshot(
            session=session,
            orchestrator_state=orchestrator_state,
            pm_state=pm_state,
            task_groups=GroupsView(items=shown_groups, by_status=by_status),
            success_criteria=criteria,
            token_summary=TokensView(total=tokens.total, by_agent_type=tokens.by),
            recent_logs=logs,
            reasoning={row["phase"]: row["n"] for row in phases},
            counts={**dict(counts_row), "task_groups": len(groups)},
            generated_at=utc_now(),
            truncated=groups_cut or criteria.truncated or logs_cut or tokens.truncated,
        )


class HealthInput(Input):
    pass


class Health(Output):
    db_path: str
    schema_version: int
    journal_mode: str
    server_version: str
    pid: int
    db_bytes: int
    wal_bytes: int
    counts: dict[str, int]


@operation("health", title="Health", read_only=True, idempotent=True)
async def health(store: Store, args: HealthInput) -> Health:
    """The database: its path, schema version, journal mode, sizes and row counts."""
    async with store.read() as conn:
        journal = await fetch_one(conn, "PRAGMA journal_mode")
        counts = await fetch_one(
            conn,
            "SELECT (SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM logs) AS logs,"
            " (SELECT count(*) FROM task_groups) AS task_groups,"
            " (SELECT count(*) FROM success_criteria) AS success_criteria,"
            " (SELECT count(*) FROM token_usage) AS token_usage",
        )
    assert journal is not None and counts is not None
    wal = store.path.with_name(store.path.name + "-wal")
    return Health(
        db_path=str(store.path),
        schema_version=store.schema_version,
        journal_mode=journal[0],
        server_version=__version__,
        pid=os.getpid(),
        db_bytes=store.path.stat().st_size,
        wal_bytes=wal.stat().st_size if wal.exists() else 0,
        counts=dict(counts),
    )
