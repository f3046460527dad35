"""route: the seeded table, every special rule from real database state, and `baton workflow` load/export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from baton.errors import InvalidInput, NotFound
from baton.store import Store
from tests.domain_helpers import baton_in_process, op
from tests.helpers import cli_json, run_cli

# The default table, copied from the brief's workflow.md: agent, status, next agent, action, context.
EXPECTED_TABLE = """
developer READY_FOR_QA qa_expert spawn dev_output,files_changed,test_results
developer READY_FOR_REVIEW tech_lead spawn dev_output,files_changed
developer BLOCKED investigator spawn blocker_details
developer PARTIAL developer respawn partial_work,remaining_tasks
developer INCOMPLETE developer respawn partial_work,remaining_tasks
developer ESCALATE_SENIOR senior_software_engineer spawn dev_output,escalation_reason
developer NEEDS_TECH_LEAD_VALIDATION tech_lead spawn validation_request,uncertainty_details
developer SPAWN_INVESTIGATOR investigator spawn investigation_scope,dev_attempt_summary,blocker_details
senior_software_engineer READY_FOR_QA qa_expert spawn dev_output,files_changed,test_results
senior_software_engineer READY_FOR_REVIEW tech_lead spawn dev_output,files_changed
senior_software_engineer BLOCKED tech_lead spawn blocker_details
senior_software_engineer NEEDS_TECH_LEAD_VALIDATION tech_lead spawn validation_request
senior_software_engineer ROOT_CAUSE_FOUND tech_lead spawn root_cause_analysis,recommendation,evidence
senior_software_engineer SPAWN_INVESTIGATOR investigator spawn investigation_scope,sse_attempt_summary,hypothesis_matrix
senior_software_engineer PARTIAL senior_software_engineer respawn partial_work,remaining_tasks
qa_expert PASS tech_lead spawn qa_report,test_results,coverage
qa_expert FAIL developer respawn qa_failures,failing_tests
qa_expert FAIL_ESCALATE senior_software_engineer spawn qa_report,challenge_level,escalation_reason
qa_expert PARTIAL tech_lead spawn qa_report,partial_results
qa_expert BLOCKED tech_lead spawn blocker_details
qa_expert FLAKY tech_lead spawn flaky_test_details,qa_report
tech_lead APPROVED developer spawn_merge approval_notes
tech_lead APPROVED_WITH_NOTES developer spawn_merge approval_notes,non_blocking_suggestions
tech_lead CHANGES_REQUESTED developer respawn tl_feedback,required_changes
tech_lead SPAWN_INVESTIGATOR investigator spawn investigation_scope
tech_lead ESCALATE_TO_OPUS tech_lead respawn escalation_reason,original_review
tech_lead UNBLOCKING_GUIDANCE_PROVIDED _return_to_blocked spawn guidance,unblocking_steps
tech_lead UNBLOCKING_GUIDANCE _return_to_blocked spawn guidance,unblocking_steps
tech_lead ARCHITECTURAL_DECISION_MADE developer spawn decision,implementation_guidance
project_manager PLANNING_COMPLETE developer spawn_batch task_groups
project_manager CONTINUE developer spawn_batch pending_groups
project_manager BAZINGA - validate_then_end completion_summary
project_manager NEEDS_CLARIFICATION - pause_for_user clarification_question
project_manager INVESTIGATION_NEEDED investigator spawn investigation_request
project_manager INVESTIGATION_ONLY - end_session investigation_answers
investigator ROOT_CAUSE_FOUND tech_lead spawn root_cause,fix_guidance,investigation_summary,evidence
investigator INVESTIGATION_INCOMPLETE tech_lead spawn partial_findings,iterations_completed,hypotheses_tested,next_steps
investigator BLOCKED tech_lead spawn blocker_details,progress_summary
investigator EXHAUSTED tech_lead spawn hypotheses_tested,elimination_reasons,recommendations
investigator NEED_DEVELOPER_DIAGNOSTIC developer spawn diagnostic_request,hypothesis,expected_output
investigator HYPOTHESIS_ELIMINATED investigator respawn eliminated_hypothesis,next_hypothesis,iteration,evidence
investigator NEED_MORE_ANALYSIS investigator respawn analysis_needed,current_hypothesis,iteration
requirements_engineer READY_FOR_REVIEW tech_lead spawn research_deliverable
requirements_engineer BLOCKED investigator spawn blocker_details
requirements_engineer PARTIAL requirements_engineer respawn partial_research
validator ACCEPT - end_session validator_verdict,completion_summary
validator REJECT project_manager spawn validator_verdict,failed_checks,remediation_guidance
"""
ROWS = [line.split() for line in EXPECTED_TABLE.strip().splitlines()]
DEVELOPER_STATUSES = sorted(status for agent, status, *_ in ROWS if agent == "developer")


async def _session(store: Store, session_id: str = "s1", **metadata: Any) -> str:
    await op(store, "create-session", session_id=session_id, requirements="build it", metadata=metadata or None)
    return session_id


async def _group(store: Store, session_id: str, group_id: str, **fields: Any) -> None:
    await op(store, "create-task-group", session_id=session_id, group_id=group_id, name=f"group {group_id}", **fields)


async def _route(store: Store, agent: str, status: str, group_id: str = "g1", session_id: str = "s1",
                 **extra: Any) -> Any:
    return await op(store, "route", session_id=session_id, group_id=group_id, agent_type=agent,
                    response_status=status, **extra)


def test_the_expected_table_has_all_47_transitions() -> None:
    """The embedded copy of the workflow table is complete (47 distinct agent/status pairs)."""
    assert len({(agent, status) for agent, status, *_ in ROWS}) == 47


@pytest.mark.parametrize(("agent", "status", "next_agent", "action", "context"), ROWS,
                         ids=[f"{r[0]}-{r[1]}" for r in ROWS])
async def test_route_reproduces_the_table(store: Store, agent: str, status: str, next_agent: str, action: str,
                                          context: str) -> None:
    """With no rule triggered (plain session and group), route returns exactly the table's row."""
    await _session(store)
    await _group(store, "s1", "g1")
    routed = await _route(store, agent, status)
    expected_next = {"-": None, "_return_to_blocked": "developer"}.get(next_agent, next_agent)
    assert (routed["next_agent"], routed["action"]) == (expected_next, action)
    assert routed["include_context"] == context.split(",")
    assert routed["status"] == status and routed["rules_applied"] == []


async def test_unknown_status_is_invalid_and_lists_what_the_agent_may_report(store: Store) -> None:
    """An (agent, status) outside the table names every status that agent may report."""
    await _session(store)
    await _group(store, "s1", "g1")
    with pytest.raises(InvalidInput) as caught:
        await _route(store, "developer", "ALL_DONE")
    message = str(caught.value)
    assert message.startswith("invalid: developer cannot report 'ALL_DONE'")
    assert all(status in message for status in DEVELOPER_STATUSES)
    with pytest.raises(InvalidInput, match=r"no transitions for agent 'orchestrator'.*developer"):
        await _route(store, "orchestrator", "DONE")


async def test_aliases_apply_per_agent_and_statuses_are_normalised(store: Store) -> None:
    """INCOMPLETE means INVESTIGATION_INCOMPLETE for the investigator only; case and spaces do not matter."""
    await _session(store)
    await _group(store, "s1", "g1")
    investigator = await _route(store, "investigator", "incomplete")
    assert (investigator["status"], investigator["next_agent"]) == ("INVESTIGATION_INCOMPLETE", "tech_lead")
    developer = await _route(store, "developer", "INCOMPLETE")
    assert (developer["status"], developer["next_agent"], developer["action"]) == ("INCOMPLETE", "developer",
                                                                                   "respawn")
    waiting = await _route(store, "investigator", "waiting for results")
    assert (waiting["status"], waiting["next_agent"]) == ("NEED_DEVELOPER_DIAGNOSTIC", "developer")


async def test_unknown_group_is_not_found(store: Store) -> None:
    """Routing for a group that does not exist is not_found, not a guess."""
    await _session(store)
    with pytest.raises(NotFound, match="task group 'nope'"):
        await _route(store, "developer", "READY_FOR_QA", group_id="nope")


@pytest.mark.parametrize(("mode", "expected"), [("disabled", "tech_lead"), ("minimal", "tech_lead"),
                                                ("full", "qa_expert")])
async def test_testing_mode_from_session_metadata_skips_qa(store: Store, mode: str, expected: str) -> None:
    """metadata.testing_mode disabled/minimal sends READY_FOR_QA to the tech lead; full keeps QA."""
    await _session(store, testing_mode=mode)
    await _group(store, "s1", "g1")
    for agent in ("developer", "senior_software_engineer"):
        routed = await _route(store, agent, "READY_FOR_QA")
        assert routed["next_agent"] == expected
        assert ("testing_mode" in routed["rules_applied"]) is (expected == "tech_lead")


async def test_escalation_uses_the_groups_own_failure_counter(store: Store) -> None:
    """QA FAIL escalates at qa_attempts >= 2, tech-lead CHANGES_REQUESTED at tl_review_attempts >= 2."""
    await _session(store)
    await _group(store, "s1", "g1")
    await op(store, "update-task-group", session_id="s1", group_id="g1", increment={"qa_attempts": 1})
    assert (await _route(store, "qa_expert", "FAIL"))["next_agent"] == "developer"
    await op(store, "update-task-group", session_id="s1", group_id="g1", increment={"qa_attempts": 1})
    escalated = await _route(store, "qa_expert", "FAIL")
    assert (escalated["next_agent"], escalated["action"]) == ("senior_software_engineer", "spawn")
    assert escalated["rules_applied"] == ["escalation_after_failures"] and "qa_attempts is 2" in escalated["reason"]
    # The tech lead's path reads its own counter: qa_attempts does not count.
    assert (await _route(store, "tech_lead", "CHANGES_REQUESTED"))["next_agent"] == "developer"
    await op(store, "update-task-group", session_id="s1", group_id="g1", increment={"tl_review_attempts": 2})
    assert (await _route(store, "tech_lead", "CHANGES_REQUESTED"))["next_agent"] == "senior_software_engineer"
    # A transition without escalation_check is never escalated.
    assert (await _route(store, "qa_expert", "PASS"))["next_agent"] == "tech_lead"


async def test_security_sensitive_group_goes_to_the_senior_with_mandatory_review(store: Store) -> None:
    """Work on a security-sensitive group goes to senior_software_engineer, flagged for mandatory review."""
    await _session(store)
    await _group(store, "s1", "g1", security_sensitive=True)
    await _group(store, "s1", "g2")
    routed = await _route(store, "tech_lead", "ARCHITECTURAL_DECISION_MADE")
    assert routed["next_agent"] == "senior_software_engineer" and routed["modifiers"]["mandatory_review"] is True
    assert routed["rules_applied"] == ["security_sensitive"]
    plain = await _route(store, "tech_lead", "ARCHITECTURAL_DECISION_MADE", group_id="g2")
    assert plain["next_agent"] == "developer" and "mandatory_review" not in plain["modifiers"]
    # The flag can be set later and is read at routing time.
    await op(store, "update-task-group", session_id="s1", group_id="g2", security_sensitive=True)
    assert (await _route(store, "qa_expert", "FAIL", group_id="g2"))["next_agent"] == "senior_software_engineer"


async def test_research_groups_go_to_the_requirements_engineer_two_at_a_time(store: Store) -> None:
    """A research group is routed to requirements_engineer; a batch starts at most 2 research groups."""
    await _session(store)
    for n in range(1, 5):
        await _group(store, "s1", f"r{n}", specializations=["Research"])
    await _group(store, "s1", "plain")
    await _group(store, "s1", "secure", security_sensitive=True)
    await _group(store, "s1", "later", depends_on=["plain"])
    single = await _route(store, "tech_lead", "ARCHITECTURAL_DECISION_MADE", group_id="r1")
    assert (single["next_agent"], single["max_parallel"]) == ("requirements_engineer", 2)
    assert single["rules_applied"] == ["research_tasks"]
    batch = await _route(store, "project_manager", "PLANNING_COMPLETE", group_id="global")
    assert batch["action"] == "spawn_batch" and batch["max_parallel"] == 4
    assert batch["groups"] == [
        {"group_id": "r1", "agent": "requirements_engineer"},
        {"group_id": "r2", "agent": "requirements_engineer"},
        {"group_id": "plain", "agent": "developer"},
        {"group_id": "secure", "agent": "senior_software_engineer"},
    ]
    # One research group running leaves one research slot.
    await op(store, "update-task-group", session_id="s1", group_id="r1", status="in_progress")
    more = await _route(store, "project_manager", "CONTINUE", group_id="global")
    assert [g["group_id"] for g in more["groups"]] == ["r2", "plain", "secure"]


async def test_investigation_stops_when_the_iteration_budget_is_spent(store: Store) -> None:
    """Investigator respawns count per group from recorded decisions; the 5th response goes to tech_lead."""
    await _session(store)
    await _group(store, "s1", "g1")
    await _group(store, "s1", "g2")
    statuses = ["HYPOTHESIS_ELIMINATED", "NEED_MORE_ANALYSIS"] * 2
    for status in statuses:
        assert (await _route(store, "investigator", status))["next_agent"] == "investigator"
    # A retry with the same key is the same decision, not another iteration.
    first = await _route(store, "investigator", "NEED_MORE_ANALYSIS", group_id="g2", idempotency_key="k")
    again = await _route(store, "investigator", "NEED_MORE_ANALYSIS", group_id="g2", idempotency_key="k")
    assert again["idempotent"] is True and again["decision_id"] == first["decision_id"]
    spent = await _route(store, "investigator", "HYPOTHESIS_ELIMINATED")
    assert (spent["next_agent"], spent["action"]) == ("tech_lead", "spawn")
    assert spent["rules_applied"] == ["iteration_budget_check"] and "5 of 5" in spent["reason"]
    assert (await _route(store, "investigator", "HYPOTHESIS_ELIMINATED", group_id="g2"))["next_agent"] == \
        "investigator"


async def test_unblocking_guidance_returns_to_the_agent_that_reported_blocked(store: Store) -> None:
    """_return_to_blocked resolves to whoever reported BLOCKED for that group, from recorded decisions."""
    await _session(store)
    await _group(store, "s1", "g1")
    await _group(store, "s1", "g2")
    await _route(store, "senior_software_engineer", "BLOCKED", group_id="g1")
    await _route(store, "requirements_engineer", "BLOCKED", group_id="g2")
    back = await _route(store, "tech_lead", "UNBLOCKING_GUIDANCE", group_id="g1")
    assert (back["next_agent"], back["action"]) == ("senior_software_engineer", "spawn")
    assert (await _route(store, "tech_lead", "UNBLOCKING_GUIDANCE_PROVIDED", group_id="g2"))["next_agent"] == \
        "requirements_engineer"


async def test_merge_reports_open_groups_and_model_override(store: Store) -> None:
    """spawn_merge says how many other groups are open; ESCALATE_TO_OPUS carries model_override."""
    await _session(store)
    await _group(store, "s1", "g1")
    await _group(store, "s1", "g2")
    merge = await _route(store, "tech_lead", "APPROVED")
    assert merge["remaining_groups"] == 1 and merge["modifiers"]["then"] == "check_phase"
    await op(store, "update-task-group", session_id="s1", group_id="g2", status="failed")
    assert (await _route(store, "tech_lead", "APPROVED"))["remaining_groups"] == 0
    opus = await _route(store, "tech_lead", "ESCALATE_TO_OPUS")
    assert opus["model_override"] == "opus" and opus["required_markers"][0] == "APPROVED"


def test_workflow_export_then_load_is_a_no_op(db_path: Path, tmp_path: Path) -> None:
    """Exporting, loading that file and exporting again gives the same file."""
    first = tmp_path / "routing.json"
    assert cli_json(db_path, "workflow", "export", "--to", str(first)) == {"exported": str(first)}
    data = json.loads(first.read_text())
    assert sum(len(v) for k, v in data.items() if not k.startswith("_")) == 47
    assert len(data["_special_rules"]) == 5 and len(data["_agent_markers"]) == 8
    loaded = cli_json(db_path, "workflow", "load", str(first))
    assert loaded["transitions"] == 47 and loaded["aliases"] == 2
    assert run_cli(db_path, "workflow", "export").stdout == first.read_text()


def test_a_loaded_bazinga_style_file_changes_routing(db_path: Path, tmp_path: Path) -> None:
    """A BAZINGA transitions.json-style file replaces the table; route follows it through the CLI."""
    custom = {
        "_version": "9.9",
        "developer": {
            "_description": "notes are ignored",
            "READY_FOR_QA": {"next_agent": "qa_expert", "action": "spawn", "include_context": ["diff"]},
            "DONE": {"next_agent": "tech_lead", "action": "spawn", "include_context": [], "_note": "x"},
        },
        "_special_rules": {"testing_mode_disabled": {"description": "skip QA", "override_next_agent": "tech_lead",
                                                     "affected_statuses": ["READY_FOR_QA"]}},
        "_status_aliases": {"FINISHED": "DONE"},
    }
    path = tmp_path / "transitions.json"
    path.write_text(json.dumps(custom))
    assert cli_json(db_path, "workflow", "load", str(path))["transitions"] == 2
    baton_in_process(db_path, "create-session", "--session-id", "s1", "--requirements", "r", "--metadata",
                     '{"testing_mode": "disabled"}')
    routed = cli_json(db_path, "route", "--session-id", "s1", "--agent-type", "developer", "--response-status",
                      "finished")
    assert (routed["status"], routed["next_agent"]) == ("DONE", "tech_lead")
    code, out, _ = baton_in_process(db_path, "route", "--session-id", "s1", "--agent-type", "developer",
                                    "--response-status", "READY_FOR_QA")
    skipped = json.loads(out)
    assert code == 0 and skipped["next_agent"] == "tech_lead" and skipped["rules_applied"] == ["testing_mode"]
    code, _, err = baton_in_process(db_path, "route", "--session-id", "s1", "--agent-type", "qa_expert",
                                    "--response-status", "PASS")
    assert code == 2 and "no transitions for agent 'qa_expert'" in err
    exported = json.loads(baton_in_process(db_path, "workflow", "export")[1])
    assert exported["_special_rules"]["testing_mode"]["modes"] == ["disabled"]


def test_an_invalid_routing_file_is_rejected_and_changes_nothing(db_path: Path, tmp_path: Path) -> None:
    """A bad action, an unknown rule or no transitions is an invalid error (exit 2); the table stays as it was."""
    before = baton_in_process(db_path, "workflow", "export")[1]
    path = tmp_path / "bad.json"
    for bad in ({"developer": {"X": {"next_agent": None, "action": "spawn"}}, "_special_rules": {"magic": {}}},
                {"developer": {"X": {"action": "spawn"}}}, {}):
        path.write_text(json.dumps(bad))
        code, _, err = baton_in_process(db_path, "workflow", "load", str(path))
        assert code == 2 and json.loads(err)["error"]["code"] == "invalid", err
    path.write_text(json.dumps({"developer": {"X": {"next_agent": None, "action": "fly"}}}))
    proc = run_cli(db_path, "workflow", "load", str(path))
    assert proc.returncode == 2 and "action 'fly' is not one of spawn" in proc.stderr
    assert baton_in_process(db_path, "workflow", "export")[1] == before
