"""Cross-session queries (list-sessions filters, project-summary) and the full catalog over MCP and the CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from baton.errors import InvalidInput
from baton.store import Store
from tests.core_helpers import connected, ok, result_text
from tests.domain_helpers import baton_in_process, op

FULL_PROFILE = {
    "save-context-package", "get-context-packages", "mark-context-consumed", "save-consumption",
    "save-skill-output", "get-skill-output", "save-error-pattern", "get-error-patterns", "update-error-confidence",
    "save-strategy", "get-strategies", "check-mandatory-phases", "save-development-plan", "get-development-plan",
    "update-plan-phase", "route", "search", "project-summary", "prune-error-patterns",
}


async def _fleet(store: Store, db_path: Path) -> None:
    """Three shop sessions (one with a failed group, one last year) and one blog session."""
    for session_id, project in [("old", "shop"), ("s1", "shop"), ("s2", "shop"), ("b1", "blog")]:
        await op(store, "create-session", session_id=session_id, requirements="r", project=project)
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE sessions SET created_at = '2025-06-01T10:00:00.000Z' WHERE session_id = 'old'")
    conn.close()
    await op(store, "create-task-group", session_id="s1", group_id="auth", name="Auth", assigned_to="developer_2")
    await op(store, "update-task-group", session_id="s1", group_id="auth", status="failed",
             increment={"qa_attempts": 3})
    await op(store, "update-session-status", session_id="s1", status="failed")  # groups are frozen once it ends
    await op(store, "create-task-group", session_id="s2", group_id="ui", name="UI")
    await op(store, "create-task-group", session_id="b1", group_id="x", name="X")
    await op(store, "update-task-group", session_id="b1", group_id="x", status="failed")
    for session_id, agent, model, tokens in [("s1", "developer", "sonnet", 1000), ("s2", "developer", "opus", 500),
                                             ("s2", "tech_lead", "opus", 250), ("old", "qa_expert", None, 100),
                                             ("b1", "developer", "sonnet", 9999)]:
        await op(store, "log-tokens", session_id=session_id, agent_type=agent, model=model, input_tokens=tokens,
                 output_tokens=tokens, cache_read_tokens=tokens)


async def _ids(store: Store, **filters: object) -> list[str]:
    page = await op(store, "list-sessions", **filters)
    return [s["session_id"] for s in page["items"]]


async def test_list_sessions_filters_combine(store: Store, db_path: Path) -> None:
    """status, project, created time range and has_failed_groups narrow the list together, newest first."""
    await _fleet(store, db_path)
    assert await _ids(store, project="shop") == ["s2", "s1", "old"]
    assert await _ids(store, has_failed_groups=True) == ["b1", "s1"]
    assert await _ids(store, project="shop", has_failed_groups=False) == ["s2", "old"]
    assert await _ids(store, created_after="2026-01-01") == ["b1", "s2", "s1"]
    assert await _ids(store, created_before="2026-01-01T00:00:00+00:00") == ["old"]
    assert await _ids(store, project="shop", status="failed", has_failed_groups=True) == ["s1"]
    first = await op(store, "list-sessions", project="shop", limit=2)
    rest = await op(store, "list-sessions", project="shop", limit=2, cursor=first["next_cursor"])
    assert [s["session_id"] for s in first["items"] + rest["items"]] == ["s2", "s1", "old"]
    with pytest.raises(InvalidInput, match="created_after: not an ISO-8601 time"):
        await op(store, "list-sessions", created_after="last tuesday")


async def test_project_summary_answers_cost_and_failures(store: Store, db_path: Path) -> None:
    """Sessions by status, tokens by model and agent type, and failed groups, for one project only."""
    await _fleet(store, db_path)
    summary = await op(store, "project-summary", project="shop")
    assert (summary["sessions"], summary["by_status"]) == (3, {"active": 2, "failed": 1})
    assert summary["first_session_at"] == "2025-06-01T10:00:00.000Z"
    tokens = summary["tokens"]
    assert tokens["total"] == 3 * (1000 + 500 + 250 + 100) and tokens["cache_read_tokens"] == 1850
    assert tokens["by_model"] == {"sonnet": 3000, "opus": 2250, "unknown": 300}
    assert tokens["by_agent_type"] == {"developer": 4500, "tech_lead": 750, "qa_expert": 300}
    assert summary["failed_groups_total"] == 1
    assert [(g["session_id"], g["group_id"], g["assigned_to"], g["qa_attempts"])
            for g in summary["failed_groups"]] == [("s1", "auth", "developer_2", 3)]
    recent = await op(store, "project-summary", project="shop", created_after="2026-01-01")
    assert recent["sessions"] == 2 and recent["tokens"]["by_agent_type"].get("qa_expert") is None
    empty = await op(store, "project-summary", project="nothing")
    assert (empty["sessions"], empty["tokens"]["total"], empty["failed_groups"]) == (0, 0, [])


async def test_every_full_profile_operation_is_an_mcp_tool_with_tools_all(store: Store) -> None:
    """`--tools all` serves every full-profile operation; a domain error keeps its stable code over MCP."""
    async with connected(store, "auto", tools="all") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names >= FULL_PROFILE
        ok(await client.call_tool("create-session", {"session_id": "s1", "requirements": "r"}))
        routed = ok(await client.call_tool("route", {"session_id": "s1", "agent_type": "project_manager",
                                                     "response_status": "BAZINGA"}))
        assert routed["action"] == "validate_then_end"
        failed = await client.call_tool("route", {"session_id": "s1", "agent_type": "validator",
                                                  "response_status": "MAYBE"})
        assert failed.is_error and "invalid: validator cannot report 'MAYBE'" in result_text(failed)
        assert "ACCEPT, REJECT" in result_text(failed)
    async with connected(store, "auto") as client:
        assert not FULL_PROFILE & {tool.name for tool in (await client.list_tools()).tools}


def test_every_full_profile_operation_is_a_cli_command(db_path: Path) -> None:
    """Each operation has a CLI subcommand with --help; a CLI error is JSON on stderr with its exit code."""
    for name in sorted(FULL_PROFILE):
        code, out, _ = baton_in_process(db_path, name, "--help")
        assert code == 0 and f"baton {name}" in out, name
    code, _, err = baton_in_process(db_path, "get-development-plan", "--session-id", "missing")
    assert code == 3 and '"code": "not_found"' in err
