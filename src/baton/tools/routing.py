"""Workflow routing: given the agent that answered and the status it reported, who goes next.

The table (workflow_transitions, workflow_aliases, workflow_special_rules, agent_markers) is
seeded by migration 0003 and replaced with `baton workflow load FILE`. Special rules read the
real state of the session and group, never values supplied by the caller:
- testing_mode: the session's `metadata.testing_mode` (`full`, `minimal`, `disabled`).
- escalation_after_failures: task_groups.qa_attempts (QA reported), tl_review_attempts (tech
  lead reported) or revision_count (anyone else), against the rule's threshold.
- security_sensitive: task_groups.security_sensitive.
- research_tasks: a group with a specialization named `research` (any case).
- iteration_budget_check: the number of investigator responses already routed for the group
  (rows in route_decisions) plus this one, against the rule's budget.
Every decision is recorded in route_decisions; `_return_to_blocked` resolves to the agent whose
BLOCKED report for the group was routed most recently.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Annotated, Any

from pydantic import Field

from baton.clock import utc_now
from baton.errors import InvalidInput, NotFound
from baton.models import AgentType, GroupScope, IdempotencyKey, Input, Output, SessionId
from baton.operations import operation
from baton.store import Store, fetch_all, fetch_one
from baton.tools._common import load_json, require_open_session, require_session
from baton.tools._dependencies import unfinished_dependencies

RETURN_TO_BLOCKED = "_return_to_blocked"
FAILURE_COUNTERS = {"qa_expert": "qa_attempts", "tech_lead": "tl_review_attempts"}
IMPLEMENTERS = ("developer", "senior_software_engineer")


def normalise_status(value: str) -> str:
    return value.strip().upper().replace(" ", "_").replace("-", "_")


class RouteInput(Input):
    session_id: SessionId
    group_id: GroupScope = Field("global", description="The group the response was about, or `global`.")
    agent_type: AgentType = Field(description="The agent that just answered.")
    response_status: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_ -]+$",
                                          description="The status it reported, e.g. READY_FOR_QA.")]
    idempotency_key: IdempotencyKey | None = None


class BatchGroup(Output):
    group_id: str
    agent: str


class Route(Output):
    next_agent: str | None = Field(description="The agent to spawn next; null when the action needs no agent.")
    action: str = Field(description="spawn, respawn, spawn_batch, spawn_merge, validate_then_end, pause_for_user, "
                                    "end_session.")
    model_override: str | None
    include_context: list[str]
    reason: str
    status: str = Field(description="The reported status after aliases, e.g. INCOMPLETE -> INVESTIGATION_INCOMPLETE.")
    modifiers: dict[str, Any] = Field(description="The transition's modifiers (e.g. fallback_agent, then) "
                                                  "plus any added by rules (mandatory_review).")
    rules_applied: list[str]
    max_parallel: int | None = None
    groups: list[BatchGroup] | None = Field(None, description="For spawn_batch: the groups to start now, and by whom.")
    remaining_groups: int | None = Field(None, description="For spawn_merge: other groups not yet completed; "
                                                           "0 means back to the project manager after the merge.")
    required_markers: list[str] = Field(description="Markers the next agent's prompt must contain.")
    decision_id: int
    idempotent: bool = False


@operation("route", title="Route to the next agent", profile="full")
async def route(store: Store, args: RouteInput) -> Route:
    """Decide the next step after an agent's response: next_agent, action, model_override, include_context.

    Applies the routing table, then the special rules using the session's and group's real
    state (testing mode, failure counters, security flag, research groups, investigation
    budget). An unknown (agent, status) is invalid and lists what that agent may report. The
    decision is recorded: it finds the agent to return to after a BLOCKED report, and counts
    toward the investigation budget."""
    status = normalise_status(args.response_status)
    async with store.write() as conn:
        session = await require_session(conn, args.session_id)

        async def write() -> dict[str, Any]:
            # Checked here, not before: a retried decision made before the session ended still answers.
            await require_open_session(conn, args.session_id, "routing")
            decided = await _decide(conn, session, args.group_id, args.agent_type, status)
            cursor = await conn.execute(
                "INSERT INTO route_decisions (session_id, group_id, agent_type, response_status, next_agent, action,"
                " rules_applied, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (args.session_id, args.group_id, args.agent_type, decided["status"], decided["next_agent"],
                 decided["action"], json.dumps(decided["rules_applied"]), utc_now()),
            )
            return {**decided, "decision_id": cursor.lastrowid}

        result, replayed = await store.idempotent(
            conn, session_id=args.session_id, operation="route", key=args.idempotency_key,
            payload={**args.model_dump(exclude={"idempotency_key"}), "response_status": status}, write=write,
        )
    return Route(**result, idempotent=replayed)


async def _transition(conn: Any, agent: str, status: str) -> tuple[sqlite3.Row, str]:
    sql = "SELECT * FROM workflow_transitions WHERE agent_type = ? AND status = ?"
    row = await fetch_one(conn, sql, (agent, status))
    if row is not None:
        return row, status
    alias = await fetch_one(
        conn, "SELECT status FROM workflow_aliases WHERE alias = ? AND agent_type IN (?, '*')"
        " ORDER BY agent_type = '*' LIMIT 1", (status, agent))
    if alias is not None:
        row = await fetch_one(conn, sql, (agent, alias["status"]))
        if row is not None:
            return row, str(alias["status"])
    statuses = [r[0] for r in await fetch_all(
        conn, "SELECT status FROM workflow_transitions WHERE agent_type = ? ORDER BY status", (agent,))]
    if not statuses:
        agents = [r[0] for r in await fetch_all(conn, "SELECT DISTINCT agent_type FROM workflow_transitions"
                                                      " ORDER BY agent_type")]
        raise InvalidInput(f"the routing table has no transitions for agent {agent!r}; agents: {', '.join(agents)}")
    aliases = [f"{r[0]} (= {r[1]})" for r in await fetch_all(
        conn, "SELECT alias, status FROM workflow_aliases WHERE agent_type IN (?, '*') ORDER BY alias", (agent,))]
    more = f"; aliases: {', '.join(aliases)}" if aliases else ""
    raise InvalidInput(f"{agent} cannot report {status!r}; the statuses {agent} may report are: "
                       f"{', '.join(statuses)}{more}")


async def _rules(conn: Any) -> dict[str, dict[str, Any]]:
    rows = await fetch_all(conn, "SELECT rule_name, config FROM workflow_special_rules WHERE enabled = 1")
    return {row["rule_name"]: json.loads(row["config"]) for row in rows}


def _is_research(group: sqlite3.Row) -> bool:
    return any(str(s).lower() == "research" for s in load_json(group["specializations"]))


async def _decide(conn: Any, session: sqlite3.Row, group_id: str, agent: str, reported: str) -> dict[str, Any]:
    group = None
    if group_id != "global":
        group = await fetch_one(conn, "SELECT * FROM task_groups WHERE session_id = ? AND group_id = ?",
                                (session["session_id"], group_id))
        if group is None:
            raise NotFound(f"task group {group_id!r} does not exist in session {session['session_id']!r}; "
                           "see get-task-groups (use group_id=global for session-level responses)")
    row, status = await _transition(conn, agent, reported)
    rules = await _rules(conn)
    next_agent: str | None = row["next_agent"]
    action: str = row["action"]
    modifiers: dict[str, Any] = json.loads(row["modifiers"])
    applied: list[str] = []
    alias_note = f" (alias of {status})" if status != reported else ""
    reasons = [f"{agent} reported {reported}{alias_note}: the table says {action} {next_agent or '(no agent)'}"]

    if next_agent == RETURN_TO_BLOCKED:
        blocked = await fetch_one(
            conn, "SELECT agent_type FROM route_decisions WHERE session_id = ? AND group_id = ?"
            " AND response_status = 'BLOCKED' ORDER BY decision_id DESC LIMIT 1", (session["session_id"], group_id))
        if blocked is not None:
            next_agent = blocked["agent_type"]
            reasons.append(f"back to {next_agent}, which reported BLOCKED for {group_id}")
        else:
            next_agent = (group["initial_tier"] if group is not None else None) or "developer"
            reasons.append(f"no BLOCKED report was routed for {group_id}; back to {next_agent}")

    testing = rules.get("testing_mode")
    mode = (load_json(session["metadata"]) or {}).get("testing_mode")
    if (testing and next_agent == "qa_expert" and mode in testing.get("modes", [])
            and status in testing.get("affected_statuses", ["READY_FOR_QA"])):
        next_agent = testing.get("override_next_agent", "tech_lead")
        applied.append("testing_mode")
        reasons.append(f"testing mode is {mode}: QA is skipped, {next_agent} instead")

    escalation = rules.get("escalation_after_failures")
    if escalation and modifiers.get("escalation_check") and group is not None:
        counter = FAILURE_COUNTERS.get(agent, "revision_count")
        threshold = int(escalation.get("threshold", 2))
        if group[counter] >= threshold:
            next_agent = escalation.get("escalation_agent", "senior_software_engineer")
            action = "spawn"
            applied.append("escalation_after_failures")
            reasons.append(f"{counter} is {group[counter]} (threshold {threshold}): escalated to {next_agent}")

    research = rules.get("research_tasks")
    max_parallel = modifiers.get("max_parallel")
    if research and group is not None and _is_research(group) and next_agent in IMPLEMENTERS:
        next_agent = research.get("agent", "requirements_engineer")
        max_parallel = research.get("max_parallel", 2)
        applied.append("research_tasks")
        reasons.append(f"{group_id} is a research group: {next_agent}")

    security = rules.get("security_sensitive")
    if security and group is not None and group["security_sensitive"] and next_agent == "developer":
        next_agent = security.get("force_agent", "senior_software_engineer")
        if security.get("mandatory_review", True):
            modifiers["mandatory_review"] = True
        applied.append("security_sensitive")
        reasons.append(f"{group_id} is security-sensitive: {next_agent}, with a mandatory tech-lead review")

    budget_rule = rules.get("iteration_budget_check")
    if budget_rule and modifiers.get("iteration_budget_check"):
        done = await fetch_one(
            conn, "SELECT count(*) FROM route_decisions WHERE session_id = ? AND group_id = ?"
            " AND agent_type = 'investigator'", (session["session_id"], group_id))
        used = (done[0] if done else 0) + (1 if agent == "investigator" else 0)
        budget = int(budget_rule.get("budget", 5))
        if used >= budget:
            next_agent = budget_rule.get("fallback_agent", "tech_lead")
            action = "spawn"
            applied.append("iteration_budget_check")
            reasons.append(f"investigation budget spent ({used} of {budget} iterations): {next_agent} decides")
        else:
            reasons.append(f"investigation iteration {used} of {budget}")

    groups = None
    if action == "spawn_batch":
        groups, max_parallel = await _batch(conn, session["session_id"], rules, int(max_parallel or 4))
        reasons.append(f"{len(groups)} ready group(s) to start (at most {max_parallel} at once)")
    remaining = None
    if action == "spawn_merge":
        left = await fetch_one(
            conn, "SELECT count(*) FROM task_groups WHERE session_id = ? AND group_id <> ?"
            " AND status NOT IN ('completed', 'failed')", (session["session_id"], group_id))
        remaining = left[0] if left else 0
        reasons.append(f"after the merge: {remaining} other group(s) open" if remaining
                       else "after the merge: no other group open, back to project_manager")

    markers = await fetch_one(conn, "SELECT markers FROM agent_markers WHERE agent_type = ?", (next_agent or "",))
    return {
        "next_agent": next_agent, "action": action, "model_override": modifiers.get("model_override"),
        "include_context": json.loads(row["include_context"]), "reason": "; ".join(reasons), "status": status,
        "modifiers": modifiers, "rules_applied": applied,
        "max_parallel": int(max_parallel) if max_parallel is not None else None,
        "groups": groups, "remaining_groups": remaining,
        "required_markers": json.loads(markers["markers"]) if markers else [],
    }


async def _batch(conn: Any, session_id: str, rules: dict[str, dict[str, Any]],
                 max_parallel: int) -> tuple[list[dict[str, str]], int]:
    """Pending groups whose dependencies are completed, each with the agent that should take it.

    max_parallel bounds the groups started now; research groups are also bounded by the rule's
    max_parallel counting those already in progress."""
    rows = await fetch_all(conn, "SELECT * FROM task_groups WHERE session_id = ? ORDER BY seq", (session_id,))
    graph = {r["group_id"]: (r["status"], load_json(r["depends_on"])) for r in rows}
    research = rules.get("research_tasks")
    research_limit = int(research.get("max_parallel", 2)) if research else max_parallel
    security = rules.get("security_sensitive")
    chosen: list[dict[str, str]] = []
    # "At most 2 research groups in parallel": those already running take their slots.
    research_count = sum(1 for r in rows if r["status"] == "in_progress" and research and _is_research(r))
    for row in rows:
        if len(chosen) >= max_parallel:
            break
        if row["status"] != "pending" or unfinished_dependencies(graph[row["group_id"]][1], graph):
            continue  # the same rule that refuses starting it in update-task-group
        agent = row["initial_tier"] or "developer"
        if research and _is_research(row):
            if research_count >= research_limit:
                continue
            research_count += 1
            agent = research.get("agent", "requirements_engineer")
        elif security and row["security_sensitive"]:
            agent = security.get("force_agent", "senior_software_engineer")
        chosen.append({"group_id": row["group_id"], "agent": agent})
    return chosen, max_parallel
