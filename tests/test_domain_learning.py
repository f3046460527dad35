"""Learning across sessions: error patterns (normalised, counted, confidence, TTL), strategies, mandatory phases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from baton.errors import Conflict, InvalidInput, NotFound
from baton.store import Store
from baton.tools.learning import normalise_error
from tests.domain_helpers import op


async def _sessions(store: Store) -> None:
    await op(store, "create-session", session_id="s1", requirements="r", project="shop")
    await op(store, "create-session", session_id="s2", requirements="r", project="shop")
    await op(store, "create-session", session_id="other", requirements="r", project="blog")


@pytest.mark.parametrize(("first", "second"), [
    ('File "/home/a/app/models.py", line 42, in save', 'File "/srv/b/models.py", line 7, in save'),
    ("KeyError: 'user_id' at src/app/views.py:120:5", "KeyError: 'order' at lib/other.py:9:1"),
    ("ModuleNotFoundError: No module named `requests`", "ModuleNotFoundError: No module named `numpy`"),
    ("segfault at 0x7ffe1234 in C:\\work\\x.dll", "segfault at 0xdeadbeef in D:\\y\\z.dll"),
])
def test_errors_differing_only_in_paths_lines_and_values_normalise_alike(first: str, second: str) -> None:
    """Paths, line numbers, quoted values and addresses are stripped before hashing."""
    assert normalise_error(first) == normalise_error(second)


def test_different_errors_stay_different() -> None:
    """Normalising keeps the words that make an error what it is."""
    assert normalise_error("KeyError: 'x'") != normalise_error("ValueError: 'x'")


async def test_the_same_error_across_sessions_counts_occurrences(store: Store) -> None:
    """One pattern per project and normalised error; occurrences grow; another project is separate."""
    await _sessions(store)
    first = await op(store, "save-error-pattern", session_id="s1", error_message="KeyError: 'a' in /x/y.py:3",
                     error_type="KeyError")
    second = await op(store, "save-error-pattern", session_id="s2", error_message="KeyError: 'b' in /z/w.py:9",
                      solution="check the key exists")
    assert first["created"] is True and second["created"] is False
    assert second["pattern_id"] == first["pattern_id"] and second["occurrences"] == 2
    assert (second["solution"], second["error_type"]) == ("check the key exists", "KeyError")
    elsewhere = await op(store, "save-error-pattern", session_id="other", error_message="KeyError: 'a' in /x/y.py:3")
    assert elsewhere["pattern_id"] != first["pattern_id"] and elsewhere["occurrences"] == 1
    found = await op(store, "get-error-patterns", project="shop", error_message="KeyError: 'zzz' in /q.py:1")
    assert [p["pattern_id"] for p in found["items"]] == [first["pattern_id"]]


async def test_a_retried_save_with_a_key_counts_once(store: Store) -> None:
    """An idempotency_key makes a retried save-error-pattern a replay, not a second occurrence."""
    await _sessions(store)
    for _ in range(3):
        await op(store, "save-error-pattern", session_id="s1", error_message="Timeout", idempotency_key="k")
    page = await op(store, "get-error-patterns", project="shop")
    assert [p["occurrences"] for p in page["items"]] == [1]


async def test_confidence_follows_reported_outcomes(store: Store) -> None:
    """Confidence is (successes + 1) / (outcomes + 2); patterns are listed most trusted first."""
    await _sessions(store)
    weak = await op(store, "save-error-pattern", project="shop", error_message="flaky network")
    strong = await op(store, "save-error-pattern", project="shop", error_message="missing migration")
    assert weak["confidence"] == 0.5
    for _ in range(3):
        updated = await op(store, "update-error-confidence", pattern_id=strong["pattern_id"], outcome="success")
    assert (updated["success_count"], updated["confidence"]) == (3, pytest.approx(0.8))
    failed = await op(store, "update-error-confidence", session_id="s1", error_message="flaky network",
                      outcome="failure")
    assert (failed["failure_count"], failed["confidence"]) == (1, pytest.approx(1 / 3))
    for _ in range(2):  # a retried report counts once
        retried = await op(store, "update-error-confidence", project="shop", pattern_id=weak["pattern_id"],
                           outcome="failure", idempotency_key="report-7")
    assert (retried["failure_count"], retried["idempotent"]) == (2, True)
    page = await op(store, "get-error-patterns", session_id="s1", min_confidence=0.5)
    assert [p["pattern_id"] for p in page["items"]] == [strong["pattern_id"]]
    with pytest.raises(NotFound):
        await op(store, "update-error-confidence", project="blog", pattern_id=strong["pattern_id"],
                 outcome="success")


async def test_a_session_without_project_needs_an_explicit_project(store: Store) -> None:
    """Learning is keyed by project: a session without one is an invalid error that says what to pass."""
    await op(store, "create-session", session_id="loose", requirements="r")
    with pytest.raises(InvalidInput, match="has no project; pass project"):
        await op(store, "save-error-pattern", session_id="loose", error_message="boom")


async def test_expired_patterns_are_hidden_and_only_deleted_by_an_explicit_prune(store: Store,
                                                                                 db_path: Path) -> None:
    """A pattern past its TTL disappears from reads; prune is a dry run unless confirmed."""
    await _sessions(store)
    old = await op(store, "save-error-pattern", project="shop", error_message="old error", ttl_days=30)
    fresh = await op(store, "save-error-pattern", project="shop", error_message="fresh error")
    with sqlite3.connect(db_path) as conn:  # age one pattern as if last seen 31 days ago
        conn.execute("UPDATE error_patterns SET last_seen = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-31 days')"
                     " WHERE pattern_id = ?", (old["pattern_id"],))
    conn.close()
    visible = await op(store, "get-error-patterns", project="shop")
    assert [p["pattern_id"] for p in visible["items"]] == [fresh["pattern_id"]]
    everything = await op(store, "get-error-patterns", project="shop", include_expired=True)
    assert {p["pattern_id"]: p["expired"] for p in everything["items"]} == {old["pattern_id"]: True,
                                                                            fresh["pattern_id"]: False}
    dry = await op(store, "prune-error-patterns")
    assert dry == {"expired": 1, "deleted": 0, "dry_run": True, "pattern_ids": [old["pattern_id"]]}
    assert len((await op(store, "get-error-patterns", project="shop", include_expired=True))["items"]) == 2
    assert (await op(store, "prune-error-patterns", project="blog", confirm=True))["deleted"] == 0
    done = await op(store, "prune-error-patterns", confirm=True)
    assert (done["deleted"], done["dry_run"]) == (1, False)
    left = await op(store, "get-error-patterns", project="shop", include_expired=True)
    assert [p["pattern_id"] for p in left["items"]] == [fresh["pattern_id"]]


async def test_seeing_an_expired_error_again_revives_it(store: Store, db_path: Path) -> None:
    """A new occurrence moves last_seen, so the TTL counts from the latest sighting."""
    await _sessions(store)
    saved = await op(store, "save-error-pattern", project="shop", error_message="again", ttl_days=1)
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE error_patterns SET last_seen = '2020-01-01T00:00:00.000Z'")
    conn.close()
    assert (await op(store, "get-error-patterns", project="shop"))["items"] == []
    await op(store, "save-error-pattern", project="shop", error_message="again")
    items = (await op(store, "get-error-patterns", project="shop"))["items"]
    assert [(p["pattern_id"], p["occurrences"], p["ttl_days"]) for p in items] == [(saved["pattern_id"], 2, 1)]


async def test_strategies_gain_helpfulness_when_saved_again(store: Store) -> None:
    """The same topic and insight adds 1 to helpfulness; a different insight for the topic is a conflict."""
    await _sessions(store)
    first = await op(store, "save-strategy", session_id="s1", topic="flaky tests", insight="rerun with -p no:randomly")
    again = await op(store, "save-strategy", session_id="s2", topic="flaky tests", insight="rerun with -p no:randomly")
    assert (first["created"], first["helpfulness"]) == (True, 1)
    assert (again["created"], again["helpfulness"], again["strategy_id"]) == (False, 2, first["strategy_id"])
    with pytest.raises(Conflict, match="more specific topic"):
        await op(store, "save-strategy", project="shop", topic="flaky tests", insight="something else")
    await op(store, "save-strategy", project="shop", topic="migrations", insight="run alembic first",
             agent_type="developer")
    page = await op(store, "get-strategies", project="shop")
    assert [(s["topic"], s["helpfulness"]) for s in page["items"]] == [("flaky tests", 2), ("migrations", 1)]
    assert [s["topic"] for s in (await op(store, "get-strategies", project="shop", contains="ALEMBIC"))["items"]] \
        == ["migrations"]
    assert (await op(store, "get-strategies", project="blog"))["items"] == []


async def test_mandatory_phases_report_what_is_missing(store: Store) -> None:
    """understanding and completion are required by default; other agents' and groups' reasoning does not count."""
    await _sessions(store)
    await op(store, "save-reasoning", session_id="s1", agent_type="developer", group_id="g1", phase="understanding",
             content="I read the code")
    await op(store, "save-reasoning", session_id="s1", agent_type="developer", group_id="g2", phase="completion",
             content="done elsewhere")
    await op(store, "save-reasoning", session_id="s1", agent_type="qa_expert", group_id="g1", phase="completion",
             content="qa done")
    check = await op(store, "check-mandatory-phases", session_id="s1", agent_type="developer", group_id="g1")
    assert check == {"complete": False, "required": ["understanding", "completion"], "missing": ["completion"],
                     "documented": {"understanding": 1}}
    await op(store, "save-reasoning", session_id="s1", agent_type="developer", group_id="g1", phase="completion",
             content="finished")
    check = await op(store, "check-mandatory-phases", session_id="s1", agent_type="developer", group_id="g1")
    assert check["complete"] is True and check["missing"] == []
    custom = await op(store, "check-mandatory-phases", session_id="s1", agent_type="developer", group_id="g1",
                      required_phases=["risks"])
    assert custom["missing"] == ["risks"]
