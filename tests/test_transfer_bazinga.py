"""`baton import bazinga`: both real BAZINGA fixtures import with the README's facts true.

The fixtures live in tests/fixtures/bazinga (their provenance is in its README).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli_env
from tests.test_transfer_cli import main_json as cli_json
from tests.test_transfer_cli import run_main as run_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bazinga"
UTC_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# The same in both files (README "Row counts"); the plan phases are the elements of development_plans.phases.
DOMAIN_COUNTS = {"context_packages": 7, "context_package_consumers": 13, "consumption_scope": 6, "skill_outputs": 9,
                 "development_plans": 2, "development_plans.phases": 6, "error_patterns": 3, "strategies": 4}
FACTS: dict[str, dict[str, Any]] = {
    "v19": {
        "file": "bazinga-v19.db",
        "sha256": "b2285725da4d3cc76df2af38084c2798f4401893d2fef177ec7036c3c7c1ce32",
        "sessions": ["bazinga_20260113_091402", "bazinga_20260115_142231", "bazinga_20260119_103047"],
        "created_a": "2026-01-13T08:14:05.000Z",
        "ended": ["2026-01-13T09:03:43.094Z", "2026-01-15T14:16:11.128Z", None],
        "counts": {"sessions": 3, "orchestration_logs": 130, "state_snapshots": 9, "task_groups": 10,
                   "success_criteria": 15, "token_usage": 39, **DOMAIN_COUNTS},
        "logs": [(28, 10, 5), (26, 5, 5), (39, 9, 3)],
        "longest": 93,
        "skipped_seed": {"workflow_transitions": 47, "agent_markers": 8, "workflow_special_rules": 5},
    },
    "v15": {
        "file": "bazinga-v15.db",
        "sha256": "53564dd18d52d10d3faa8c0d8fba5f50aa6bbf4a9c5e036211c7025115eda905",
        "sessions": ["bazinga_20251218_091402", "bazinga_20251222_142231", "bazinga_20251229_103047"],
        "created_a": "2025-12-18T08:14:05.000Z",
        "ended": ["2025-12-18T09:03:47.108Z", "2025-12-22T14:16:06.196Z", None],
        "counts": {"sessions": 3, "orchestration_logs": 128, "state_snapshots": 15, "task_groups": 10,
                   "success_criteria": 15, "token_usage": 39, **DOMAIN_COUNTS},
        "logs": [(28, 10, 5), (26, 5, 2), (39, 9, 4)],
        "longest": 90,
        "skipped_seed": {"workflow_transitions": 44, "agent_markers": 8, "workflow_special_rules": 5},
    },
}
BAZINGA_TO_BATON = {"sessions": "sessions", "orchestration_logs": "logs", "state_snapshots": "state_snapshots",
                    "task_groups": "task_groups", "success_criteria": "success_criteria", "token_usage": "token_usage",
                    "context_packages": "context_packages", "context_package_consumers": "context_package_consumers",
                    "consumption_scope": "context_consumption", "skill_outputs": "skill_outputs",
                    "development_plans": "development_plans", "development_plans.phases": "plan_phases",
                    "error_patterns": "error_patterns", "strategies": "strategies"}


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    assert path.is_file(), f"BAZINGA fixture missing: {path}"
    return path


def source(version: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{fixture_path(FACTS[version]['file'])}?mode=ro&immutable=1", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def target(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def ledger_id(conn: sqlite3.Connection, session_id: str, key: str) -> Any:
    row = conn.execute("SELECT response FROM idempotency_keys WHERE operation = 'import-bazinga' AND session_id = ?"
                       " AND key = ?", (session_id, key)).fetchone()
    assert row is not None, key
    return json.loads(row[0])


class Imported:
    def __init__(self, version: str, db: Path, report: dict[str, Any]) -> None:
        self.version = version
        self.facts = FACTS[version]
        self.db = db
        self.report = report
        self.conn = target(db)
        self.a, self.b, self.c = self.facts["sessions"]

    def table(self, name: str) -> dict[str, Any]:
        return next(t for t in self.report["tables"] if t["source_table"] == name)


@pytest.fixture(scope="module", params=["v19", "v15"])
def imported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imported]:
    version: str = request.param
    db = tmp_path_factory.mktemp(version) / "baton.db"
    report = cli_json(db, "import", "bazinga", str(fixture_path(FACTS[version]["file"])), "--json")
    result = Imported(version, db, report)
    yield result
    result.conn.close()


def test_fixture_files_are_the_documented_ones() -> None:
    for facts in FACTS.values():
        assert hashlib.sha256(fixture_path(facts["file"]).read_bytes()).hexdigest() == facts["sha256"]


def test_report_counts_equal_the_readme(imported: Imported) -> None:
    report = imported.report
    assert report["committed"] is True and report["dry_run"] is False
    assert report["source_info"]["schema_version"] == int(imported.version[1:])
    assert report["source_info"]["sha256"] == imported.facts["sha256"]
    for source_table, rows in imported.facts["counts"].items():
        t = imported.table(source_table)
        assert t["source_rows"] == rows, source_table
        assert t["imported"] == rows and t["skipped"] == 0, t
        assert t["target_before"] == 0 and t["target_after"] == rows
        baton_table = BAZINGA_TO_BATON[source_table]
        assert imported.conn.execute(f"SELECT count(*) FROM {baton_table}").fetchone()[0] == rows
    for seed, rows in imported.facts["skipped_seed"].items():
        t = imported.table(seed)
        assert t["source_rows"] == rows and t["skipped"] == rows and t["imported"] == 0
    assert report["violations"] == []
    for t in report["tables"]:  # every source row accounted for
        assert t["source_rows"] == t["imported"] + t["skipped"]


def test_sessions(imported: Imported) -> None:
    rows = imported.conn.execute("SELECT * FROM sessions ORDER BY session_id").fetchall()
    assert [r["session_id"] for r in rows] == imported.facts["sessions"]
    assert [r["status"] for r in rows] == ["completed", "failed", "active"]
    assert [r["mode"] for r in rows] == ["simple", "simple", "parallel"]
    assert [r["initial_branch"] for r in rows] == ["main", "chore/dramatiq", "feature/multi-currency"]
    assert {r["project"] for r in rows} == {"ledgerly"}
    assert rows[0]["created_at"] == imported.facts["created_a"]
    # end_time is local time (UTC+1): converted, and the assumption is in the report and metadata.
    assert [r["ended_at"] for r in rows] == imported.facts["ended"]
    meta = json.loads(rows[0]["metadata"])
    assert meta["testing_mode"] == "full" and meta["requested_by"] == "cli"
    provenance = meta["bazinga_import"]
    assert provenance["end_time_assumed_offset"] == "+01:00"
    assert "session id" in provenance["end_time_offset_source"]
    assert any("read as local time UTC+01:00" in note for note in imported.report["notes"])
    assert rows[0]["requirements"].startswith("Add a password-reset flow")
    for r in rows:
        for column in ("created_at", "updated_at"):
            assert UTC_MS.match(r[column]), r[column]


def test_logs_per_session_and_type(imported: Imported) -> None:
    for sid, expected in zip(imported.facts["sessions"], imported.facts["logs"], strict=True):
        got = dict(imported.conn.execute(
            "SELECT log_type, count(*) FROM logs WHERE session_id = ? GROUP BY log_type", (sid,)).fetchall())
        assert (got.get("interaction"), got.get("reasoning"), got.get("event")) == expected, sid
    by_agent = dict(imported.conn.execute(
        "SELECT agent_type, count(*) FROM logs WHERE session_id = ? AND log_type = 'interaction' GROUP BY agent_type",
        (imported.a,)).fetchall())
    assert by_agent == {"developer": 2, "orchestrator": 14, "project_manager": 2, "qa_expert": 3,
                        "senior_software_engineer": 3, "tech_lead": 3, "validator": 1}
    phases = dict(imported.conn.execute(
        "SELECT phase, count(*) FROM logs WHERE session_id = ? AND log_type = 'reasoning' GROUP BY phase",
        (imported.a,)).fetchall())
    assert phases == {"completion": 3, "decisions": 2, "pivot": 1, "understanding": 4}
    assert imported.conn.execute("SELECT count(*) FROM logs WHERE agent_type = 'pm'").fetchone()[0] == 0
    for (ts,) in imported.conn.execute("SELECT timestamp FROM logs"):
        assert UTC_MS.match(ts)


def test_log_content_is_byte_for_byte_and_in_order(imported: Imported) -> None:
    src = source(imported.version)
    originals = src.execute("SELECT id, session_id, content, log_type FROM orchestration_logs ORDER BY id").fetchall()
    new_ids = []
    for row in originals:
        new_id = ledger_id(imported.conn, row["session_id"], f"orchestration_logs:{row['id']}")["id"]
        got = imported.conn.execute("SELECT content FROM logs WHERE log_id = ?", (new_id,)).fetchone()[0]
        assert got == row["content"], row["id"]  # emoji, U+202F, backslashes, fences: untouched
        new_ids.append(new_id)
    assert new_ids == sorted(new_ids)  # ordering by id is preserved
    redacted = imported.conn.execute("SELECT log_id FROM logs WHERE redacted = 1").fetchall()
    log7 = ledger_id(imported.conn, imported.a, "orchestration_logs:7")["id"]
    assert [r[0] for r in redacted] == [log7]
    row = imported.conn.execute("SELECT * FROM logs WHERE log_id = ?", (log7,)).fetchone()
    assert (row["agent_type"], row["phase"], row["confidence"], row["group_id"]) == (
        "senior_software_engineer", "decisions", "medium", "A")
    assert "password=REDACTED" in row["content"]
    longest = ledger_id(imported.conn, imported.c, f"orchestration_logs:{imported.facts['longest']}")["id"]
    row = imported.conn.execute("SELECT log_id, agent_type, content_length FROM logs"
                                " ORDER BY content_length DESC LIMIT 1").fetchone()
    assert (row["log_id"], row["agent_type"], row["content_length"]) == (longest, "developer", 4032)


def test_events_and_their_idempotency_keys(imported: Imported) -> None:
    events = imported.conn.execute(
        "SELECT * FROM logs WHERE session_id = ? AND log_type = 'event' ORDER BY log_id", (imported.c,)).fetchall()
    verdicts = [e for e in events if e["event_type"] == "tl_verdicts"]
    payload = json.loads(verdicts[-1]["payload"])
    assert payload["group_id"] == "CUR_AUDIT" and payload["iteration"] == 2
    if imported.version == "v15":
        assert len(verdicts) == 2  # delivered twice, stored twice: imported as BAZINGA has it
        return
    assert len(verdicts) == 1
    investigations = imported.conn.execute(
        "SELECT agent_type, group_id FROM logs WHERE log_type = 'event' AND event_type = 'investigation_iteration'"
    ).fetchall()
    assert [tuple(r) for r in investigations] == [("investigator", "WORKERS")] * 3
    # The v19 key is registered for save-event: the same event again through Baton is a replay.
    key = f"{imported.c}|CUR_AUDIT|tl_verdicts|2"
    replay = cli_json(imported.db, "save-event", "--session-id", imported.c, "--event-type", "tl_verdicts",
                      "--group-id", "CUR_AUDIT", "--payload", json.dumps(payload), "--idempotency-key", key)
    assert replay == {"event_id": verdicts[0]["log_id"], "idempotent": True}


def test_task_groups(imported: Imported) -> None:
    def group(sid: str, gid: str) -> sqlite3.Row:
        row: sqlite3.Row | None = imported.conn.execute(
            "SELECT * FROM task_groups WHERE session_id = ? AND group_id = ?", (sid, gid)).fetchone()
        assert row is not None
        return row

    a = group(imported.a, "A")
    assert (a["name"], a["status"], a["complexity"], a["assigned_to"], a["initial_tier"]) == (
        "Reset token API + rate limiting", "completed", 5, "senior_software_engineer_1", "senior_software_engineer")
    assert (a["security_sensitive"], a["revision_count"], a["qa_attempts"], a["tl_review_attempts"]) == (1, 1, 2, 2)
    assert a["review_status"] == "approved" and a["component_path"] == "backend/" and a["item_count"] == 4
    assert len(json.loads(a["specializations"])) == 3
    assert group(imported.a, "B")["initial_tier"] == "developer"
    statuses = dict(imported.conn.execute("SELECT group_id, status FROM task_groups WHERE session_id = ?",
                                          (imported.c,)).fetchall())
    assert statuses == {"CUR_RATES": "completed", "CUR_MODEL": "merging", "CUR_UI": "in_progress",
                        "CUR_AUDIT": "approved_pending_merge", "CUR_PDF": "pending"}
    assert group(imported.c, "CUR_PDF")["assigned_to"] is None
    ui = group(imported.c, "CUR_UI")
    assert (ui["complexity"], ui["assigned_to"], ui["revision_count"], ui["qa_attempts"]) == (7, "developer_2", 1, 1)
    assert ui["review_status"] is None
    # context_references [4, 7] name BAZINGA packages: translated to the imported packages' ids
    meta = json.loads(ui["metadata"])
    packages = [ledger_id(imported.conn, imported.c, f"context_packages:{n}")["id"] for n in (4, 7)]
    assert meta["context_references"] == packages and meta["bazinga_import"]["context_references"] == [4, 7]
    assert "extra" not in ledger_id(imported.conn, imported.c, "task_groups:CUR_UI")
    assert json.loads(a["metadata"]) == {}
    workers = group(imported.b, "WORKERS")
    assert (workers["status"], workers["complexity"], workers["revision_count"]) == ("failed", 8, 2)
    docs = group(imported.b, "DOCS")
    assert (docs["name"], docs["status"], docs["complexity"], docs["item_count"]) == ("Task Group DOCS", "pending",
                                                                                       None, 1)
    assert docs["specializations"] == "[]"
    if imported.version == "v19":
        assert meta["speckit_task_ids"] == ["T007", "T008"]
        rates = json.loads(group(imported.c, "CUR_RATES")["metadata"])
        assert rates == {"speckit_task_ids": ["T001", "T002", "T003"]}
        assert (workers["no_progress_count"], workers["blocking_issues_count"]) == (2, 1)
        assert a["review_iteration"] == 2
    else:
        assert "speckit_task_ids" not in meta
        assert workers["no_progress_count"] == 0


def test_success_criteria(imported: Imported) -> None:
    rows = {r["criterion"]: r for r in imported.conn.execute(
        "SELECT * FROM success_criteria WHERE session_id = ?", (imported.a,))}
    assert len(rows) == 5
    tests = rows["All tests pass"]
    assert (tests["status"], tests["actual"], tests["evidence"]) == ("met", "33 backend + 12 frontend + 5 e2e",
                                                                     "CI run #4812 green")
    lighthouse = rows["Lighthouse accessibility score ≥ 95 on /reset"]
    assert (lighthouse["status"], lighthouse["actual"], lighthouse["required_for_completion"]) == ("pending", "92", 0)
    summary = cli_json(imported.db, "get-success-criteria", "--session-id", imported.b)
    assert [c["status"] for c in summary["items"]] == ["failed", "met", "blocked", "pending"]


def test_tokens_through_token_summary(imported: Imported) -> None:
    totals = [imported.conn.execute("SELECT sum(input_tokens + output_tokens + cache_read_tokens"
                                    " + cache_write_tokens), count(*) FROM token_usage WHERE session_id = ?",
                                    (sid,)).fetchone() for sid in imported.facts["sessions"]]
    assert [tuple(t) for t in totals] == [(202180, 13), (177786, 10), (276930, 16)]
    assert sum(t[0] for t in totals) == 656896
    summary = cli_json(imported.db, "token-summary", "--session-id", imported.a)  # through the operation
    assert summary["total"] == 202180
    assert summary["by"] == {"developer": 26730, "project_manager": 23660, "qa_expert": 32730,
                             "senior_software_engineer": 72410, "tech_lead": 42350, "validator": 4300}


def test_state_snapshots(imported: Imported) -> None:
    rows = imported.conn.execute("SELECT * FROM state_snapshots ORDER BY snapshot_id").fetchall()
    if imported.version == "v19":
        assert len(rows) == 9 and {r["version"] for r in rows} == {1}
        state = cli_json(imported.db, "get-state", "--session-id", imported.b, "--state-type", "investigation",
                         "--group-id", "WORKERS")
        assert state["state"]["status"] == "fix_proposed"
        return
    assert len(rows) == 15
    c = [(r["state_type"], r["group_id"], r["version"]) for r in rows if r["session_id"] == imported.c]
    assert [x for x in c if x[0] == "orchestrator"] == [("orchestrator", "global", v) for v in (1, 2, 3)]
    assert [x for x in c if x[0] == "pm"] == [("pm", "global", v) for v in (1, 2)]
    # v15 has no group_id column: a group_status row takes its group from state_data.group.
    assert ("group_status", "CUR_UI", 1) in c


def test_context_packages_and_consumers(imported: Imported) -> None:
    """Facts 14 and 15: 7 packages (A 3, B 0, C 4), 13 consumers of which 3 pending."""
    per_session = [imported.conn.execute("SELECT count(*) FROM context_packages WHERE session_id = ?",
                                         (sid,)).fetchone()[0] for sid in imported.facts["sessions"]]
    assert per_session == [3, 0, 4]

    def package(n: int) -> sqlite3.Row:
        sid = imported.a if n <= 3 else imported.c
        row: sqlite3.Row = imported.conn.execute("SELECT * FROM context_packages WHERE package_id = ?", (
            ledger_id(imported.conn, sid, f"context_packages:{n}")["id"],)).fetchone()
        return row

    one = package(1)
    assert (one["group_id"], one["package_type"], one["priority"], one["producer"], one["size_bytes"]) == (
        "global", "research", "high", "project_manager", 130)
    assert one["file_path"] == f"bazinga/artifacts/{imported.a}/context/research-auth-reset.md"
    assert one["content"] is None and one["version"] == 1 and one["supersedes"] is None
    assert package(5)["size_bytes"] is None and package(5)["group_id"] == "CUR_RATES"
    consumers = imported.conn.execute("SELECT * FROM context_package_consumers").fetchall()
    assert len(consumers) == 13 and sum(r["consumed_at"] is not None for r in consumers) == 10
    pending = sorted((r["package_id"], r["agent_type"]) for r in consumers if r["consumed_at"] is None)
    assert pending == sorted([(package(4)["package_id"], "qa_expert"), (package(6)["package_id"], "developer"),
                              (package(6)["package_id"], "qa_expert")])
    developer_on_1 = next(r for r in consumers
                          if r["package_id"] == one["package_id"] and r["agent_type"] == "developer")
    assert developer_on_1["iteration"] == 3 and UTC_MS.match(developer_on_1["consumed_at"])
    # through the domain operation: what qa_expert still has to read in session C, most important first
    page = cli_json(imported.db, "get-context-packages", "--session-id", imported.c, "--agent-type", "qa_expert")
    assert [p["package_id"] for p in page["items"]] == [package(6)["package_id"], package(4)["package_id"]]
    scope = imported.conn.execute("SELECT session_id, group_id, agent_type, iteration FROM context_consumption"
                                  " ORDER BY consumption_id").fetchall()
    assert len(scope) == 6
    assert [tuple(r) for r in scope if r["session_id"] == imported.a] == [
        (imported.a, "A", "senior_software_engineer", 1), (imported.a, "A", "senior_software_engineer", 2)]
    assert sum(r["session_id"] == imported.c for r in scope) == 4


def test_skill_outputs(imported: Imported) -> None:
    rows = imported.conn.execute("SELECT session_id, skill_name, agent_type, group_id, iteration FROM skill_outputs"
                                 " ORDER BY output_id").fetchall()
    assert [tuple(r)[1:] for r in rows if r["session_id"] == imported.a] == [
        ("lint-check", "senior_software_engineer", "A", 1), ("codebase-analysis", "senior_software_engineer", "A", 1),
        ("security-scan", "tech_lead", "A", 1), ("test-coverage", "tech_lead", "A", 1),
        ("security-scan", "tech_lead", "A", 2), ("lint-check", "developer", "B", 1),
        ("test-coverage", "tech_lead", "B", 1)]
    assert [tuple(r)[1:] for r in rows if r["session_id"] == imported.c] == [
        ("lint-check", "developer", "CUR_RATES", 1), ("security-scan", "tech_lead", "CUR_RATES", 1)]
    latest = cli_json(imported.db, "get-skill-output", "--session-id", imported.a, "--skill-name", "test-coverage",
                      "--group-id", "B")
    assert latest["output"]["note"] == "branch ≥ 80 % ✓ (seuil atteint)"  # \u escapes decoded, text intact
    assert latest["created_at"] == latest["created_at"][:19] + ".000Z"


def test_development_plans(imported: Imported) -> None:
    """Fact 16, and the local-time completed_at converted with the session's offset."""
    assert imported.conn.execute("SELECT count(*) FROM development_plans").fetchone()[0] == 2
    plan = cli_json(imported.db, "get-development-plan", "--session-id", imported.b)
    assert [(p["phase_number"], p["name"], p["status"]) for p in plan["phases"]] == [
        (1, "Retry parity", "completed"), (2, "Port tasks", "blocked"), (3, "Docs & cut-over", "pending")]
    assert plan["total"] == 3 and plan["current_phase"] == 2
    source_row = source(imported.version).execute(
        "SELECT phases FROM development_plans WHERE session_id = ?", (imported.b,)).fetchone()
    local = json.loads(source_row[0])[0]["completed_at"]  # e.g. 2026-01-15T14:36:54.143109, UTC+1
    assert plan["phases"][0]["completed_at"] == f"{local[:11]}{int(local[11:13]) - 1:02d}{local[13:23]}Z"
    assert [p["completed_at"] for p in plan["phases"][1:]] == [None, None]
    kept = plan["metadata"]["bazinga_import"]
    assert (kept["current_phase"], kept["total_phases"]) == (2, 3)
    assert plan["metadata"]["strategy"] == "sequential"
    progress = {n: v.get("progress_percent") for n, v in kept["phases"].items()}
    c = cli_json(imported.db, "get-development-plan", "--session-id", imported.c)
    c_progress = {n: v.get("progress_percent") for n, v in c["metadata"]["bazinga_import"]["phases"].items()}
    if imported.version == "v19":
        assert progress == {"1": 100, "2": 25, "3": None} and c_progress == {"1": 80, "2": 60, "3": None}
    else:
        assert set(progress.values()) == set(c_progress.values()) == {None}
    assert c["metadata"]["bazinga_import"]["current_phase"] == 2  # BAZINGA's value, kept
    assert [p["status"] for p in c["phases"]] == ["in_progress", "in_progress", "pending"]


def test_error_patterns_and_strategies(imported: Imported) -> None:
    """Facts 17 and 18 (project ledgerly), through the learning operations."""
    patterns = cli_json(imported.db, "get-error-patterns", "--project", "ledgerly",
                        "--include-expired", "true")["items"]  # last seen January 2026, TTL 90 days
    assert len(patterns) == 3
    by_prefix = {p["signature"][:16]: p for p in patterns}
    assert set(by_prefix) == {"dc33f01b19cd4d97", "969eb1fe75697464", "1eaa039941e4716f"}
    ts = by_prefix["dc33f01b19cd4d97"]
    assert (ts["occurrences"], ts["confidence"], ts["error_type"]) == (2, 0.7, "AssertionError")
    assert by_prefix["969eb1fe75697464"]["confidence"] == 0.3
    langs = dict(imported.conn.execute("SELECT substr(signature, 1, 16), lang FROM error_patterns").fetchall())
    assert langs == {"dc33f01b19cd4d97": "typescript", "969eb1fe75697464": "python", "1eaa039941e4716f": "python"}
    strategies = {s["topic"]: s for s in cli_json(imported.db, "get-strategies", "--project", "ledgerly")["items"]}
    assert len(strategies) == 4
    assert strategies["architecture"]["helpfulness"] == 4 and strategies["methodology"]["helpfulness"] == 2
    # Baton keeps one strategy per (project, topic): the second `implementation` gets a qualified topic.
    assert {"implementation", "implementation (typescript/react)"} <= set(strategies)
    assert strategies["implementation (typescript/react)"]["insight"].startswith("Format money with Intl")
    rows = {r["topic"]: (r["lang"], r["framework"]) for r in imported.conn.execute("SELECT * FROM strategies")}
    assert rows["implementation"] == ("python", "fastapi") and rows["methodology"] == (None, None)
    strategies_report = imported.table("strategies")
    assert strategies_report["adjusted"] == {"topic already taken in the project: imported under a qualified topic": 1}
    assert any("imported as topic 'implementation (typescript/react)'" in n for n in imported.report["notes"])
    ledger = ledger_id(imported.conn, "project:ledgerly", "strategies:ledgerly_implementation_440c97929328f774")
    assert ledger["extra"] == {"topic": "implementation"}


def test_reimport_is_idempotent(imported: Imported) -> None:
    again = cli_json(imported.db, "import", "bazinga", str(fixture_path(imported.facts["file"])), "--json")
    assert again["totals"]["imported"] == 0
    for source_table, rows in imported.facts["counts"].items():
        t = next(x for x in again["tables"] if x["source_table"] == source_table)
        reason = "already imported with its plan" if source_table == "development_plans.phases" else (
            "already imported (same row)")
        assert t["skipped_reasons"] == {reason: rows}, source_table
        assert t["target_before"] == t["target_after"] == rows


def test_source_never_modified_and_dry_run_writes_nothing(tmp_path: Path) -> None:
    copy_dir = tmp_path / "src"
    copy_dir.mkdir()
    src = copy_dir / "bazinga.db"
    shutil.copyfile(fixture_path("bazinga-v19.db"), src)
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    db = tmp_path / "out" / "baton.db"
    db.parent.mkdir()  # an explicit --db in a missing directory is invalid (7cc32f6)
    report = cli_json(db, "import", "bazinga", str(src), "--dry-run", "--json")
    assert report["dry_run"] is True and report["committed"] is False
    assert next(t for t in report["tables"] if t["source_table"] == "orchestration_logs")["imported"] == 130
    assert not db.exists()  # a dry run does not even create the target
    cli_json(db, "import", "bazinga", str(src), "--json")
    size = db.stat().st_size
    report = cli_json(db, "import", "bazinga", str(src), "--dry-run", "--json")
    assert report["totals"]["imported"] == 0
    assert db.stat().st_size == size
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in copy_dir.iterdir()) == ["bazinga.db"]  # no -wal / -shm created


def _broken_copy(tmp_path: Path) -> Path:
    """A v19 copy with values BAZINGA's CHECKs let through (and one they would not)."""
    path = tmp_path / "broken.db"
    shutil.copyfile(fixture_path("bazinga-v19.db"), path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    conn.execute("UPDATE task_groups SET last_review_status = 'LGTM', merge_status = 'done' WHERE id = 'B'")
    conn.execute("UPDATE task_groups SET status = 'blocked' WHERE id = 'CUR_PDF'")
    conn.commit()
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    return path


def test_constraint_violations_are_reported_and_strict_is_fatal(tmp_path: Path) -> None:
    broken = _broken_copy(tmp_path)
    db = tmp_path / "baton.db"
    strict = run_cli(db, "import", "bazinga", str(broken), "--strict", "--json")
    assert strict.returncode == 2, strict.stderr
    assert "--strict" in strict.stderr and "nothing was written" in strict.stderr
    counts = target(db).execute("SELECT count(*) FROM sessions").fetchone()[0] if db.exists() else 0
    assert counts == 0
    report = cli_json(db, "import", "bazinga", str(broken), "--json")
    problems = {(v["row"], v["problem"].split(" ")[0]) for v in report["violations"]}
    sid_a, _, sid_c = FACTS["v19"]["sessions"]
    assert (f"{sid_a}/B", "last_review_status") in problems
    assert (f"{sid_a}/B", "merge_status") in problems
    assert (f"{sid_c}/CUR_PDF", "status") in problems
    groups = next(t for t in report["tables"] if t["source_table"] == "task_groups")
    assert groups["imported"] == 9 and groups["skipped_reasons"] == {"unknown status": 1}
    conn = target(db)
    row = conn.execute("SELECT review_status, merge_status FROM task_groups WHERE group_id = 'B'").fetchone()
    assert tuple(row) == (None, None)
    extra = ledger_id(conn, sid_a, "task_groups:B")["extra"]
    assert extra == {"last_review_status": "LGTM", "merge_status": "done"}


def _renamed_copy(tmp_path: Path) -> Path:
    """A v19 copy whose session A has an id that carries no local time."""
    path = tmp_path / "renamed.db"
    shutil.copyfile(fixture_path("bazinga-v19.db"), path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = OFF")
    for table in ("sessions", "orchestration_logs", "state_snapshots", "task_groups", "token_usage", "skill_outputs",
                  "development_plans", "success_criteria", "context_packages", "consumption_scope"):
        conn.execute(f"UPDATE {table} SET session_id = 'legacy-A' WHERE session_id = 'bazinga_20260113_091402'")
    conn.commit()
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    return path


def test_local_offset_flag_and_machine_zone(tmp_path: Path) -> None:
    db = tmp_path / "flag.db"
    cli_json(db, "import", "bazinga", str(fixture_path("bazinga-v19.db")), "--local-offset", "+02:00", "--json")
    ended = target(db).execute("SELECT ended_at FROM sessions WHERE session_id = 'bazinga_20260113_091402'")
    assert ended.fetchone()[0] == "2026-01-13T08:03:43.094Z"
    renamed = _renamed_copy(tmp_path)
    db = tmp_path / "zone.db"
    env = {**cli_env(db), "TZ": "Asia/Tokyo"}
    proc = subprocess.run([sys.executable, "-m", "baton", "import", "bazinga", str(renamed), "--json"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert any("legacy-A" in n and "+09:00" in n and "machine's time zone" in n for n in report["notes"])
    row = target(db).execute("SELECT ended_at, metadata FROM sessions WHERE session_id = 'legacy-A'").fetchone()
    assert row[0] == "2026-01-13T01:03:43.094Z"
    assert json.loads(row[1])["bazinga_import"]["end_time_assumed_offset"] == "+09:00"


def test_not_a_bazinga_database(tmp_path: Path, db_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
    proc = run_cli(db_path, "import", "bazinga", str(other))
    assert proc.returncode == 2 and "not a BAZINGA database" in proc.stderr
    missing = run_cli(db_path, "import", "bazinga", str(tmp_path / "nope.db"))
    assert missing.returncode == 3
    assert os.path.exists(db_path) is False


def _copy_with(tmp_path: Path, sql: str, *params: Any) -> Path:
    """A v19 copy with one statement applied (in rollback-journal mode, as the fixture is)."""
    path = tmp_path / "crafted.db"
    shutil.copyfile(fixture_path("bazinga-v19.db"), path)
    conn = sqlite3.connect(path)
    conn.execute(sql, params)
    conn.commit()
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    return path


@pytest.mark.parametrize(("table", "column", "value"), [
    ("token_usage", "timestamp", "9999-12-31T23:59:59-01:00"),  # past 9999 in UTC
    ("sessions", "end_time", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC (a local time: local_text)
    ("orchestration_logs", "timestamp", "the day before yesterday"),  # not a time at all
])
def test_a_source_time_outside_the_calendar_is_invalid_naming_its_row(tmp_path: Path, table: str, column: str,
                                                                      value: str) -> None:
    """A source time that is no time, or leaves the calendar in UTC, is `invalid` (exit 2) naming its table,
    column and row, and nothing is imported (it was `OverflowError`, exit 1, for the out-of-range ones)."""
    crafted = _copy_with(tmp_path, f"UPDATE {table} SET {column} = ? WHERE rowid = 1", value)
    db = tmp_path / "baton.db"
    proc = run_cli(db, "import", "bazinga", str(crafted), "--json")
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stderr)["error"]
    assert error["code"] == "invalid"
    assert error["message"].startswith(f"{crafted}: {table}.{column} (rowid 1): {value!r} is "), error
    assert ("out of range in UTC" if value[0].isdigit() else "not a timestamp") in error["message"]
    assert "nothing was imported" in error["message"]
    assert not db.exists() or target(db).execute("SELECT count(*) FROM sessions").fetchone()[0] == 0


def test_a_pattern_last_seen_at_the_end_of_the_calendar_is_read_with_its_expiry_clamped(tmp_path: Path) -> None:
    """An error pattern last seen 9999-12-31 imports and reads back: expires at the calendar's end, not
    expired (adding its TTL was `internal: OverflowError` on every get-error-patterns)."""
    crafted = _copy_with(tmp_path, "UPDATE error_patterns SET last_seen = '9999-12-31 12:00:00' WHERE rowid = 1")
    db = tmp_path / "baton.db"
    cli_json(db, "import", "bazinga", str(crafted), "--json")
    patterns = cli_json(db, "get-error-patterns", "--project", "ledgerly", "--include-expired", "true")["items"]
    latest = next(p for p in patterns if p["last_seen"] == "9999-12-31T12:00:00.000Z")
    assert (latest["ttl_days"], latest["expires_at"], latest["expired"]) == (90, "9999-12-31T23:59:59.999Z", False)
