"""search: FTS5 over logs, reasoning, criteria and context packages, across sessions, kept in sync, budgeted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from baton.errors import InvalidInput
from baton.migrations import load_migrations, migrate
from baton.store import Store
from tests.domain_helpers import op


async def _hits(store: Store, query: str, **filters: Any) -> list[tuple[str, str]]:
    page = await op(store, "search", query=query, **filters)
    return sorted((hit["kind"], hit["session_id"]) for hit in page["items"])


async def _two_projects(store: Store) -> None:
    await op(store, "create-session", session_id="shop-1", requirements="r", project="shop")
    await op(store, "create-session", session_id="shop-2", requirements="r", project="shop")
    await op(store, "create-session", session_id="blog-1", requirements="r", project="blog")


async def test_content_written_through_every_tool_is_found_across_sessions(store: Store) -> None:
    """Interactions (single and batch), reasoning, criteria and package summaries are all searchable at once."""
    await _two_projects(store)
    await op(store, "log-interaction", session_id="shop-1", agent_type="developer",
             content="Implemented the checkout flow with Stripe webhooks")
    await op(store, "log-interactions", session_id="blog-1", entries=[
        {"agent_type": "qa_expert", "content": "webhook retries are flaky in CI"}])
    await op(store, "save-reasoning", session_id="shop-2", agent_type="tech_lead", phase="risks",
             content="Webhook signatures must be verified")
    await op(store, "save-success-criteria", session_id="shop-2", criteria=[{"criterion": "Webhooks are idempotent"}])
    await op(store, "save-context-package", session_id="blog-1", package_type="research", producer="developer",
             consumers=["qa_expert"], summary="How other teams test webhooks", content="...")
    assert await _hits(store, "webhook") == [
        ("context_package", "blog-1"), ("criterion", "shop-2"), ("interaction", "blog-1"),
        ("interaction", "shop-1"), ("reasoning", "shop-2")]
    assert await _hits(store, "webhook", project="shop") == [
        ("criterion", "shop-2"), ("interaction", "shop-1"), ("reasoning", "shop-2")]
    assert await _hits(store, "webhook", session_id="blog-1", kinds=["context_package"]) == [
        ("context_package", "blog-1")]
    assert await _hits(store, "webhook", agent_type="tech_lead") == [("reasoning", "shop-2")]
    assert await _hits(store, "stripe webhooks checkout") == [("interaction", "shop-1")]
    assert await _hits(store, "stripe blog") == []


async def test_hits_have_snippets_and_the_best_match_comes_first(store: Store) -> None:
    """Each hit carries a short snippet with the match in brackets; the densest match ranks first."""
    await op(store, "create-session", session_id="s1", requirements="r")
    await op(store, "log-interaction", session_id="s1", agent_type="developer",
             content="a long story " + "filler words " * 200 + "that mentions migration once")
    best = await op(store, "log-interaction", session_id="s1", agent_type="developer",
                    content="migration failed: the migration lock was held")
    page = await op(store, "search", query="migration", snippet_words=8)
    assert [hit["id"] for hit in page["items"]] == [best["log_id"], best["log_id"] - 1]
    assert "[migration]" in page["items"][0]["snippet"] and len(page["items"][1]["snippet"]) < 120


async def test_a_word_repeated_through_a_long_log_is_found_quickly_with_a_snippet(store: Store) -> None:
    """40,000 repeats of the searched word in one log (FTS5's snippet() took 10 s, growing with the square),
    a repeated query word, and a long row with one late match: each answers at once with a bracketed snippet."""
    await op(store, "create-session", session_id="s1", requirements="r")
    await op(store, "log-interaction", session_id="s1", agent_type="developer", content="word " * 40_000)
    late = await op(store, "log-interaction", session_id="s1", agent_type="developer",
                    content="filler " * 5_000 + "the migrations ran")
    with anyio.fail_after(5):  # generous: linear work is milliseconds here
        repeated = await op(store, "search", query="word " * 40, snippet_words=8)
        migration = await op(store, "search", query="migration", snippet_words=8)
    assert len(repeated["items"]) == 1 and repeated["items"][0]["snippet"].startswith("[word] [word]")
    assert [hit["id"] for hit in migration["items"]] == [late["log_id"]]
    assert "[migrations] ran" in migration["items"][0]["snippet"]


async def test_updates_and_deletes_keep_the_index_in_sync(store: Store, db_path: Path) -> None:
    """A criterion's new evidence becomes searchable; a deleted log stops being found."""
    await op(store, "create-session", session_id="s1", requirements="r")
    await op(store, "save-success-criteria", session_id="s1", criteria=[{"criterion": "All tests pass"}])
    assert await _hits(store, "pytest") == []
    await op(store, "update-success-criterion", session_id="s1", criterion="All tests pass", status="met",
             evidence="pytest: 412 passed")
    assert await _hits(store, "pytest") == [("criterion", "s1")]
    logged = await op(store, "log-interaction", session_id="s1", agent_type="developer", content="ephemeral note")
    assert await _hits(store, "ephemeral") == [("interaction", "s1")]
    with sqlite3.connect(db_path) as conn:  # as an explicit prune would
        conn.execute("DELETE FROM logs WHERE log_id = ?", (logged["log_id"],))
    conn.close()
    assert await _hits(store, "ephemeral") == []


async def test_rows_written_before_the_index_existed_are_found(tmp_path: Path) -> None:
    """A schema-1 database with logs and criteria is backfilled when migrated."""
    db_path = tmp_path / "old.db"
    migrate(db_path, load_migrations()[:1])
    conn = sqlite3.connect(db_path)
    with conn:
        now = "2026-01-01T00:00:00.000Z"
        conn.execute("INSERT INTO sessions (session_id, project, requirements, created_at, updated_at)"
                     " VALUES ('old', 'legacy', 'r', ?, ?)", (now, now))
        conn.execute("INSERT INTO logs (session_id, log_type, agent_type, content, content_length, timestamp)"
                     " VALUES ('old', 'interaction', 'developer', 'refactored the payment gateway', 30, ?)", (now,))
        conn.execute("INSERT INTO logs (session_id, log_type, agent_type, phase, content, content_length, timestamp)"
                     " VALUES ('old', 'reasoning', 'developer', 'risks', 'gateway timeouts', 16, ?)", (now,))
        conn.execute("INSERT INTO success_criteria (session_id, criterion, evidence, created_at, updated_at)"
                     " VALUES ('old', 'Gateway handles retries', 'see logs', ?, ?)", (now, now))
    conn.close()
    store = await Store.open(db_path)
    try:
        assert await _hits(store, "gateway", project="legacy") == [
            ("criterion", "old"), ("interaction", "old"), ("reasoning", "old")]
    finally:
        await store.close()


async def test_results_stay_within_the_response_budget_and_page(store: Store) -> None:
    """Hundreds of hits on huge rows are cut to the budget; following next_cursor yields every hit once."""
    await op(store, "create-session", session_id="s1", requirements="r")
    huge = "needle " + "x" * 20_000
    await op(store, "log-interactions", session_id="s1",
             entries=[{"agent_type": "developer", "content": huge} for _ in range(120)])
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = await op(store, "search", query="needle", limit=500, cursor=cursor)
        assert len(json.dumps(page)) < 80_000
        seen += [hit["id"] for hit in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 120 and pages > 1


@pytest.mark.parametrize("query", ['"unbalanced', "a AND OR NOT", "col:umn", "-minus +plus", "NEAR(x y)", "*"])
async def test_any_user_text_is_a_safe_query(store: Store, query: str) -> None:
    """FTS5 syntax in the query is treated as words, never as an error from SQLite."""
    await op(store, "create-session", session_id="s1", requirements="r")
    await op(store, "log-interaction", session_id="s1", agent_type="developer", content="plus minus column near")
    if query == "*":
        with pytest.raises(InvalidInput, match="no words"):
            await op(store, "search", query=query)
    else:
        page = await op(store, "search", query=query)
        assert isinstance(page["items"], list)
