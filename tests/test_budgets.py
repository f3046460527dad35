"""Response budgets: with MB-sized content and thousands of rows, every read stays under the cap,
says when it cut something, and its cursor visits every row exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mcp.types import CallToolResult

from baton.tools import select
from tests.proof_helpers import EXPECTED_CODES, SyncClient, error_code, sync_client, text_of

# The whole tool result as sent (structured content plus its text copy): Claude Code rejects ~25k tokens.
RESPONSE_CAP_CHARS = 80_000
BIG = "big-session"
PROJECT = "big-project"
LOG_ROWS = 3000
HUGE_LOGS = 4
SESSIONS = 30
GROUPS = 80
CRITERIA = 400
TOKEN_AGENTS = 1000


def size(result: CallToolResult) -> int:
    return len(result.model_dump_json(by_alias=True, exclude_none=True))


def ok(client: SyncClient, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = client.call(tool, arguments)
    assert not result.is_error, f"{tool}: {text_of(result)[:500]}"
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncClient]:
    """A database with MB-sized logs, thousands of rows, huge requirements, groups and criteria."""
    db_path = tmp_path_factory.mktemp("budgets") / "big.db"
    with sync_client(db_path) as client:
        ok(client, "create-session", {"session_id": BIG, "requirements": "R" * 150_000, "project": PROJECT})
        for number in range(SESSIONS):
            ok(client, "create-session", {"session_id": f"s-{number:03d}", "requirements": f"{number} " + "q" * 150_000,
                                          "project": PROJECT})
        for start in range(0, LOG_ROWS, 1000):
            entries = [{"agent_type": "developer", "content": f"row {i} " + "w" * (i % 700)}
                       for i in range(start, start + 1000)]
            ok(client, "log-interactions", {"session_id": BIG, "entries": entries})
        for number in range(HUGE_LOGS):
            ok(client, "log-interaction", {"session_id": BIG, "agent_type": "tech_lead",
                                           "content": f"huge {number} " + "H" * 1_500_000})
            ok(client, "save-reasoning", {"session_id": BIG, "agent_type": "tech_lead", "phase": "decisions",
                                          "content": "D" * 1_000_000, "references": ["r" * 1000] * 100})
            ok(client, "save-event", {"session_id": BIG, "event_type": "review",
                                      "payload": {"issues": ["e" * 900] * 30}})
        for number in range(GROUPS):
            ok(client, "create-task-group", {
                "session_id": BIG, "group_id": f"g{number:03d}", "name": "N" * 500,
                "specializations": ["s" * 500] * 50, "depends_on": [f"g{i:03d}" for i in range(number)],
                "component_path": "p" * 1000})
        for start in range(0, CRITERIA, 200):
            ok(client, "save-success-criteria", {"session_id": BIG, "criteria": [
                {"criterion": f"{i} " + "c" * 1990} for i in range(start, start + 200)]})
        for kind in ("pm", "orchestrator"):
            ok(client, "save-state", {"session_id": BIG, "state_type": kind, "state": {"notes": "n" * 29_000}})
        for number in range(TOKEN_AGENTS):
            ok(client, "log-tokens", {"session_id": BIG, "agent_type": "developer", "input_tokens": 10,
                                      "agent_id": f"agent-{number}-" + "a" * 100, "model": f"m{number}"})
        yield client


def read_arguments(tool: str) -> dict[str, Any]:
    """Arguments that make a read tool return as much of the big session as it will."""
    op = {o.name: o for o in select("all")}[tool]
    fields = op.input_model.model_fields
    arguments: dict[str, Any] = {}
    for name, value in [("session_id", BIG), ("project", PROJECT), ("limit", 500), ("max_chars", 20_000),
                        ("log_limit", 100), ("state_type", "pm"), ("query", "row"), ("agent_type", "developer"),
                        ("by", "agent_id")]:
        if name in fields:
            arguments[name] = value
    return arguments


READ_TOOLS = sorted(op.name for op in select("all") if op.read_only)


@pytest.mark.parametrize("tool", READ_TOOLS)
def test_every_read_stays_under_the_response_cap(big: SyncClient, tool: str) -> None:
    """The largest answer each read tool gives on the big session fits in one response."""
    result = big.call(tool, read_arguments(tool))
    if result.is_error:
        assert error_code(tool, result) in EXPECTED_CODES
    assert size(result) <= RESPONSE_CAP_CHARS, f"{tool} answered {size(result)} characters"


def test_get_session_with_huge_requirements_fits_and_says_so(big: SyncClient) -> None:
    """150,000 characters of requirements: get-session stays under the cap."""
    result = big.call("get-session", {"session_id": BIG})
    assert not result.is_error and size(result) <= RESPONSE_CAP_CHARS, size(result)


def _pages(client: SyncClient, tool: str, arguments: dict[str, Any], key: str) -> tuple[list[Any], int, bool]:
    """Follow next_cursor to the end; returns (every row's key in order, pages, whether any page said truncated)."""
    seen: list[Any] = []
    cursor = None
    pages = 0
    cut = False
    while True:
        result = client.call(tool, {**arguments, **({"cursor": cursor} if cursor else {})})
        assert not result.is_error, text_of(result)[:300]
        assert size(result) <= RESPONSE_CAP_CHARS, f"{tool} page {pages}: {size(result)} characters"
        page = result.structured_content
        assert page is not None
        seen += [item[key] for item in page["items"]]
        cut = cut or bool(page.get("truncated"))
        pages += 1
        assert pages < 10_000
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, pages, cut


def test_paging_logs_visits_every_row_exactly_once(big: SyncClient) -> None:
    """get-logs at the largest page size and max_chars: every page fits, MB rows are cut and flagged,
    and following the cursor returns each log exactly once, in order."""
    ids, _, cut = _pages(big, "get-logs", {"session_id": BIG, "limit": 500, "max_chars": 20_000}, "log_id")
    total = LOG_ROWS + 3 * HUGE_LOGS
    assert len(ids) == total and len(set(ids)) == total and ids == sorted(ids)
    assert cut, "no page said it was cut short although the rows cannot fit"
    huge = big.call("get-logs", {"session_id": BIG, "log_type": "reasoning", "limit": 1})
    assert huge.structured_content is not None
    assert huge.structured_content["items"][0]["truncated"] is True


def test_paging_sessions_visits_every_session_exactly_once(big: SyncClient) -> None:
    """list-sessions over sessions with 150k-character requirements: each page fits, each session once."""
    ids, pages, _ = _pages(big, "list-sessions", {"project": PROJECT, "limit": 500}, "session_id")
    assert len(ids) == SESSIONS + 1 and len(set(ids)) == SESSIONS + 1
    assert pages > 1


def test_paging_task_groups_visits_every_group_exactly_once(big: SyncClient) -> None:
    """get-task-groups with large groups: each answer fits and the cursor returns every group once."""
    ids, _, _ = _pages(big, "get-task-groups", {"session_id": BIG}, "group_id")
    assert ids == [f"g{n:03d}" for n in range(GROUPS)]


def test_paging_criteria_visits_every_criterion_exactly_once(big: SyncClient) -> None:
    """get-success-criteria with hundreds of long criteria: each answer fits, counts cover all of them."""
    ids, _, _ = _pages(big, "get-success-criteria", {"session_id": BIG}, "criterion_id")
    assert len(ids) == CRITERIA and len(set(ids)) == CRITERIA
    first = big.call("get-success-criteria", {"session_id": BIG}).structured_content
    assert first is not None and first["total"] == CRITERIA


def test_dashboard_of_the_big_session_fits_and_keeps_its_totals(big: SyncClient) -> None:
    """The snapshot cuts lists to fit but its counts and totals still describe everything."""
    result = big.call("dashboard-snapshot", {"session_id": BIG, "log_limit": 100, "max_chars": 20_000})
    assert not result.is_error and size(result) <= RESPONSE_CAP_CHARS, size(result)
    snapshot = result.structured_content
    assert snapshot is not None
    assert sum(snapshot["task_groups"]["by_status"].values()) == GROUPS
    assert snapshot["success_criteria"]["total"] == CRITERIA
    assert snapshot["counts"]["interactions"] == LOG_ROWS + HUGE_LOGS


def test_quote_heavy_session_fits_every_answer_that_carries_it(big: SyncClient) -> None:
    """Requirements and metadata full of quotes grow when escaped; every answer with the session still fits."""
    metadata = {f"k{i}": '"q"' for i in range(1700)}
    created = big.call("create-session", {"session_id": "quotes", "requirements": '"R"\\' * 40_000,
                                          "metadata": metadata})
    assert not created.is_error and size(created) <= RESPONSE_CAP_CHARS, size(created)
    reads: list[tuple[str, dict[str, Any]]] = [
        ("get-session", {"session_id": "quotes"}),
        ("update-session-status", {"session_id": "quotes", "status": "paused"}),
        ("list-sessions", {"limit": 500, "max_chars": 20_000}),
        ("dashboard-snapshot", {"session_id": "quotes", "max_chars": 20_000}),
    ]
    for tool, arguments in reads:
        result = big.call(tool, arguments)
        assert not result.is_error and size(result) <= RESPONSE_CAP_CHARS, f"{tool}: {size(result)}"
    got = big.call("get-session", {"session_id": "quotes"}).structured_content
    assert got is not None and got["truncated"] is True and got["metadata"] == metadata


def test_token_summary_over_a_thousand_agents_keeps_the_largest_and_exact_totals(big: SyncClient) -> None:
    """Per-agent sums for 1000 agent ids do not fit: the largest keys are kept, truncated says so, and the
    totals still count every row."""
    result = big.call("token-summary", {"session_id": BIG, "by": "agent_id"})
    assert not result.is_error and size(result) <= RESPONSE_CAP_CHARS, size(result)
    summary = result.structured_content
    assert summary is not None and summary["truncated"] is True
    assert 0 < len(summary["by"]) < TOKEN_AGENTS and summary["input_tokens"] == 10 * TOKEN_AGENTS


def test_objects_that_could_not_be_read_back_in_one_response_are_refused(big: SyncClient) -> None:
    """A 30,000-character object of quotes doubles when escaped: save-state and create-session refuse it
    (invalid, nothing written); a quote-heavy object that fits is accepted and read back under the cap."""
    quotes = {"k": '"' * 14_900}
    refused = big.call("save-state", {"session_id": BIG, "state_type": "investigation", "state": quotes})
    assert refused.is_error and error_code("save-state", refused) == "invalid", text_of(refused)
    refused = big.call("create-session", {"session_id": "meta-quotes", "requirements": "r", "metadata": quotes})
    assert refused.is_error and error_code("create-session", refused) == "invalid", text_of(refused)
    assert big.call("get-session", {"session_id": "meta-quotes"}).is_error
    dense = {f"k{i}": '"\\"' for i in range(1400)}
    ok(big, "save-state", {"session_id": BIG, "state_type": "investigation", "state": dense})
    read = big.call("get-state", {"session_id": BIG, "state_type": "investigation"})
    assert not read.is_error and size(read) <= RESPONSE_CAP_CHARS, size(read)
    ok(big, "create-session", {"session_id": "meta-dense", "requirements": "r" * 100_000, "metadata": dense})
    read = big.call("get-session", {"session_id": "meta-dense"})
    assert not read.is_error and size(read) <= RESPONSE_CAP_CHARS, size(read)
