"""`baton merge`: Baton and BAZINGA databases folded in; id conflicts reported and resolved by content."""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
from pathlib import Path

from baton.migrations import load_migrations, migrate
from tests.test_transfer_cli import main_json as cli_json
from tests.test_transfer_cli import run_main as run_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bazinga"


def _sessions(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT session_id, requirements FROM sessions").fetchall())
    finally:
        conn.close()


def test_merge_baton_and_bazinga_sources(tmp_path: Path) -> None:
    v19, v15 = FIXTURES / "bazinga-v19.db", FIXTURES / "bazinga-v15.db"
    assert v19.is_file() and v15.is_file(), f"BAZINGA fixtures missing under {FIXTURES}"
    one, two, target = tmp_path / "one.db", tmp_path / "two.db", tmp_path / "target.db"
    cli_json(one, "create-session", "--session-id", "shared", "--requirements", "from one")
    cli_json(one, "log-interaction", "--session-id", "shared", "--agent-type", "pm", "--content", "hello")
    cli_json(two, "create-session", "--session-id", "shared", "--requirements", "from two")
    cli_json(two, "create-session", "--session-id", "only-two", "--requirements", "two")
    reports = cli_json(target, "merge", str(one), str(two), str(v15), "--json")
    assert [r["command"] for r in reports] == ["merge (baton)", "merge (baton)", "merge (bazinga)"]
    conflict = reports[1]["violations"]
    assert len(conflict) == 1 and conflict[0]["row"] == "shared"
    sessions = _sessions(target)
    renamed = [s for s in sessions if s.startswith("shared.m")]
    assert sessions["shared"] == "from one" and len(renamed) == 1 and sessions[renamed[0]] == "from two"
    assert "only-two" in sessions and "bazinga_20251218_091402" in sessions
    # merging again is a no-op: identical sessions skipped, the renamed one found under its name
    again = cli_json(target, "merge", str(one), str(two), str(v15), "--json")
    assert all(r["totals"]["imported"] == 0 for r in again)
    assert _sessions(target) == sessions
    skip = cli_json(tmp_path / "skip.db", "merge", str(one), str(two), "--on-conflict", "skip", "--json")
    assert skip[1]["violations"][0]["action"].startswith("skipped")
    strict = run_cli(tmp_path / "strict.db", "merge", str(one), str(two), "--strict")
    assert strict.returncode == 2


def _learn(db: Path, *, patterns: dict[str, int], strategies: dict[str, int], project: str = "shop") -> None:
    """Save each error `patterns[message]` times (one success report each), each strategy `n` times."""
    for message, times in patterns.items():
        for _ in range(times):
            cli_json(db, "save-error-pattern", "--project", project, "--error-message", message)
            cli_json(db, "update-error-confidence", "--project", project, "--error-message", message,
                     "--outcome", "success")
    for topic, times in strategies.items():
        for _ in range(times):
            cli_json(db, "save-strategy", "--project", project, "--topic", topic, "--insight", f"{topic} works")


def _learning(db: Path) -> tuple[dict[str, tuple[int, int, float]], dict[str, int]]:
    conn = sqlite3.connect(db)
    try:
        patterns = {r[0]: (r[1], r[2], round(r[3], 3)) for r in conn.execute(
            "SELECT normalized_message, occurrences, success_count, confidence FROM error_patterns")}
        strategies = dict(conn.execute("SELECT topic, helpfulness FROM strategies").fetchall())
        return patterns, strategies
    finally:
        conn.close()


def test_a_baton_sources_learning_is_merged_and_counted(tmp_path: Path) -> None:
    """3 patterns and 4 strategies in the source are 3 and 4 after the merge (they were 0 and 0); the same
    normalised error adds occurrences and outcomes, the same strategy adds helpfulness."""
    source, target = tmp_path / "source.db", tmp_path / "target.db"
    _learn(source, patterns={"KeyError: 'a'": 2, "timeout after 30s": 1, "ImportError: no module 'x'": 1},
           strategies={"retries": 2, "pinning": 1, "caching": 1, "logging": 1})
    _learn(target, patterns={"KeyError: 'b'": 3}, strategies={"retries": 1})
    (report,) = [cli_json(target, "merge", str(source), "--json")]
    patterns, strategies = _learning(target)
    assert len(patterns) == 3 and len(strategies) == 4
    assert patterns["KeyError: <value>"] == (5, 5, round(6 / 7, 3)), "occurrences and successes added"
    assert strategies == {"retries": 3, "pinning": 1, "caching": 1, "logging": 1}
    tables = {t["source_table"]: t for t in report["tables"]}
    assert (tables["error_patterns"]["source_rows"], tables["error_patterns"]["imported"]) == (3, 3)
    assert tables["error_patterns"]["adjusted"] == {"merged into the target's pattern (counts added)": 1}


def test_merging_learning_again_adds_only_what_the_source_learned_since(tmp_path: Path) -> None:
    source, target = tmp_path / "source.db", tmp_path / "target.db"
    _learn(source, patterns={"KeyError: 'a'": 2}, strategies={"retries": 2})
    _learn(target, patterns={"KeyError: 'b'": 1}, strategies={"retries": 1})
    cli_json(target, "merge", str(source), "--json")
    again = cli_json(target, "merge", str(source), "--json")
    assert again["totals"]["imported"] == 0 and _learning(target) == ({"KeyError: <value>": (3, 3, 0.8)},
                                                                      {"retries": 3})
    _learn(source, patterns={"KeyError: 'c'": 1}, strategies={"retries": 1})
    cli_json(target, "merge", str(source), "--json")
    assert _learning(target) == ({"KeyError: <value>": (4, 4, round(5 / 6, 3))}, {"retries": 4})


def test_a_copied_database_counts_the_history_it_shares_once(tmp_path: Path) -> None:
    """Two copies of one database carry the same patterns' origin: merged, the shared counts are not doubled."""
    original, copy, target = tmp_path / "original.db", tmp_path / "copy.db", tmp_path / "target.db"
    _learn(original, patterns={"KeyError: 'a'": 2}, strategies={"retries": 1})
    shutil.copyfile(original, copy)
    _learn(copy, patterns={"KeyError: 'a'": 1}, strategies={"retries": 1})
    cli_json(target, "merge", str(original), str(copy), "--json")
    assert _learning(target) == ({"KeyError: <value>": (3, 3, 0.8)}, {"retries": 2})
    cli_json(original, "merge", str(copy), "--json")
    assert _learning(original) == _learning(target), "merging into one of the copies gives the same counts"


def test_a_strategy_on_a_topic_taken_by_another_insight_keeps_both(tmp_path: Path) -> None:
    source, target = tmp_path / "source.db", tmp_path / "target.db"
    cli_json(source, "save-strategy", "--project", "shop", "--topic", "retries", "--insight", "back off")
    cli_json(target, "save-strategy", "--project", "shop", "--topic", "retries", "--insight", "fail fast")
    report = cli_json(target, "merge", str(source), "--json")
    cli_json(target, "merge", str(source), "--json")
    suffix = hashlib.sha256(b"back off").hexdigest()[:8]
    assert _learning(target)[1] == {"retries": 1, f"retries ({suffix})": 1}
    (strategies,) = [t for t in report["tables"] if t["source_table"] == "strategies"]
    assert list(strategies["adjusted"]) == [
        "topic taken by another insight in the target: merged under a qualified topic"]


def _session_rows(db: Path, session_id: str) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {table: conn.execute(f"SELECT count(*) FROM {table} WHERE session_id = ?", (session_id,)).fetchone()[0]
                for table in ("sessions", "logs", "token_usage")}
    finally:
        conn.close()


def test_a_session_continued_in_another_copy_merges_into_the_longer_one(tmp_path: Path) -> None:
    """A copy that only went on (appended logs and tokens, a later status) is the same session, in either
    order: one session, the longer, its tokens counted once; nothing renamed."""
    early, later = tmp_path / "early.db", tmp_path / "later.db"
    cli_json(early, "create-session", "--session-id", "s", "--requirements", "r", "--project", "shop")
    cli_json(early, "log-interaction", "--session-id", "s", "--agent-type", "developer", "--content", "one")
    cli_json(early, "log-tokens", "--session-id", "s", "--agent-type", "developer", "--input-tokens", "100")
    shutil.copyfile(early, later)
    cli_json(later, "log-interaction", "--session-id", "s", "--agent-type", "developer", "--content", "two")
    cli_json(later, "log-tokens", "--session-id", "s", "--agent-type", "developer", "--input-tokens", "50")
    cli_json(later, "update-session-status", "--session-id", "s", "--status", "paused")
    for order in ((early, later), (later, early)):
        target = tmp_path / f"target-{order[0].stem}.db"
        reports = cli_json(target, "merge", *map(str, order), "--json")
        assert all(r["violations"] == [] for r in reports)
        assert _session_rows(target, "s") == {"sessions": 1, "logs": 2, "token_usage": 2}
        assert _sessions(target) == {"s": "r"}
        summary = cli_json(target, "project-summary", "--project", "shop")
        assert summary["tokens"]["input_tokens"] == 150
        assert cli_json(target, "get-session", "--session-id", "s")["status"] == "paused"
    assert reports[1]["notes"] == ["s: unchanged (the target's copy continues this one)"]


def test_copies_written_after_they_parted_are_a_conflict_the_report_explains(tmp_path: Path) -> None:
    """Both copies appended their own log: renamed as before, with the first difference as the reason."""
    one, two, target = tmp_path / "one.db", tmp_path / "two.db", tmp_path / "target.db"
    cli_json(one, "create-session", "--session-id", "s", "--requirements", "r")
    cli_json(one, "log-interaction", "--session-id", "s", "--agent-type", "developer", "--content", "shared")
    shutil.copyfile(one, two)
    cli_json(one, "log-interaction", "--session-id", "s", "--agent-type", "developer", "--content", "in one")
    cli_json(two, "log-interaction", "--session-id", "s", "--agent-type", "developer", "--content", "in two")
    reports = cli_json(target, "merge", str(one), str(two), "--json")
    (conflict,) = reports[1]["violations"]
    assert conflict["problem"].endswith("a different session with this id exists (logs differ from entry 2 "
                                        "(the copies have 2 and 2))")
    assert re.fullmatch(r"incoming session imported as s\.m[0-9a-f]{8} \(.*\)", conflict["action"])


def test_merge_help_names_the_rename_it_makes() -> None:
    """--help promises ID.m<hash>, the name a conflict gets (`~` is not allowed in a session id)."""
    result = run_cli(Path("unused.db"), "merge", "--help")
    assert result.returncode == 0 and "ID.m<8 hex of its content hash>" in " ".join(result.stdout.split())
    assert "~" not in result.stdout


def test_a_source_with_an_older_schema_merges(tmp_path: Path) -> None:
    """A Baton source not migrated to the latest schema (no after_end, forced columns) merges; defaults fill in."""
    source, target = tmp_path / "v5.db", tmp_path / "target.db"
    migrate(source, load_migrations()[:5])
    conn = sqlite3.connect(source)
    conn.execute("INSERT INTO sessions (session_id, requirements, created_at, updated_at) VALUES ('old', 'r',"
                 " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')")
    conn.execute("INSERT INTO logs (session_id, log_type, agent_type, content, timestamp) VALUES ('old',"
                 " 'interaction', 'developer', 'x', '2026-01-01T00:00:00.000Z')")
    conn.execute("INSERT INTO error_patterns (project, signature, normalized_message, example_message, first_seen,"
                 " last_seen) VALUES ('shop', ?, 'm', 'm', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
                 ("0" * 64,))
    conn.commit()
    conn.close()
    cli_json(target, "merge", str(source), "--json")
    (log,) = cli_json(target, "get-logs", "--session-id", "old")["items"]
    assert log["after_end"] is False and _learning(target)[0] == {"m": (1, 0, 0.5)}
