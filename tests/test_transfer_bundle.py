"""Session bundles: export -> import into an empty database -> export is byte-identical; sync."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import cli_env
from tests.test_transfer_cli import main_json as cli_json
from tests.test_transfer_cli import run_main as run_cli

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "bazinga" / "bazinga-v19.db"
SESSIONS = ["bazinga_20260113_091402", "bazinga_20260115_142231", "bazinga_20260119_103047"]


@pytest.fixture(scope="module")
def source_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert FIXTURE.is_file(), f"BAZINGA fixture missing: {FIXTURE}"
    db = tmp_path_factory.mktemp("bundle-src") / "baton.db"
    cli_json(db, "import", "bazinga", str(FIXTURE), "--json")
    return db


def test_round_trip_is_byte_identical(source_db: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    exported = cli_json(source_db, "export", "--all", "--to", str(first))
    assert [e["session_id"] for e in exported["exported"]] == SESSIONS
    empty = tmp_path / "empty.db"
    report = cli_json(empty, "import", "bundle", str(first), "--json")
    assert report["committed"] is True and report["violations"] == []
    logs = next(t for t in report["tables"] if t["source_table"] == "logs")
    assert logs["source_rows"] == logs["imported"] == 130
    second = tmp_path / "second"
    cli_json(empty, "export", "--all", "--to", str(second))
    for sid in SESSIONS:
        a = (first / sid / "state.json").read_bytes()
        b = (second / sid / "state.json").read_bytes()
        assert a == b, sid
    bundle = json.loads((first / SESSIONS[2] / "state.json").read_text(encoding="utf-8"))
    assert bundle["format"] == "baton-session-bundle" and bundle["format_version"] == 2
    assert len(bundle["task_groups"]) == 5 and "log_id" not in bundle["logs"][0]
    # format 2 carries the session's full-profile rows, without database ids
    ui = next(g for g in bundle["task_groups"] if g["group_id"] == "CUR_UI")
    assert ui["metadata"]["speckit_task_ids"] == ["T007", "T008"]
    assert [p["producer"] for p in bundle["context_packages"]] == ["requirements_engineer", "developer", "tech_lead",
                                                                  "qa_expert"]
    assert sum(len(p["consumers"]) for p in bundle["context_packages"]) == 8
    assert [c["package"] for c in bundle["context_consumption"]] == [0, 0, 0, 3]
    assert len(bundle["skill_outputs"]) == 2 and bundle["skill_outputs"][0]["output"]["tool"] == "ruff"
    assert [p["status"] for p in bundle["development_plan"]["phases"]] == ["in_progress", "in_progress", "pending"]
    for table, rows in (("context_packages", 7), ("context_package_consumers", 13), ("context_consumption", 6),
                        ("skill_outputs", 9), ("development_plans", 2), ("plan_phases", 6)):
        t = next(x for x in report["tables"] if x["source_table"] == table)
        assert t["source_rows"] == t["imported"] == t["target_after"] == rows, table
    page = cli_json(empty, "get-context-packages", "--session-id", SESSIONS[2], "--agent-type", "qa_expert")
    assert [p["summary"][:5] for p in page["items"]] == ["Money", "ISO 4"]
    assert "₹" in (first / SESSIONS[2] / "state.json").read_text(encoding="utf-8")  # human-readable, not \u escapes
    # token totals survive the trip
    assert cli_json(empty, "token-summary", "--session-id", SESSIONS[0])["total"] == 202180
    # importing again changes nothing
    again = cli_json(empty, "import", "bundle", str(first), "--json")
    assert again["totals"]["imported"] == 0
    assert all(t["target_before"] == t["target_after"] for t in again["tables"])


def test_single_file_and_conflicts(source_db: Path, tmp_path: Path) -> None:
    file = tmp_path / "a.json"
    cli_json(source_db, "export", SESSIONS[0], "--to", str(file))
    stdout = run_cli(source_db, "export", SESSIONS[0])
    assert stdout.returncode == 0 and stdout.stdout == file.read_text(encoding="utf-8")
    db = tmp_path / "t.db"
    cli_json(db, "import", "bundle", str(file), "--json")
    changed = json.loads(file.read_text(encoding="utf-8"))
    changed["session"]["requirements"] = "edited elsewhere"
    changed["logs"] = changed["logs"][:5]
    file.write_text(json.dumps(changed), encoding="utf-8")
    refused = cli_json(db, "import", "bundle", str(file), "--json")
    assert refused["totals"]["imported"] == 0 and refused["violations"][0]["table"] == "sessions"
    replaced = cli_json(db, "import", "bundle", str(file), "--replace", "--json")
    assert replaced["totals"]["imported"] > 0
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT requirements FROM sessions").fetchone()[0] == "edited elsewhere"
    assert conn.execute("SELECT count(*) FROM logs").fetchone()[0] == 5
    conn.close()
    bad = tmp_path / "bad" / "state.json"
    bad.parent.mkdir()
    bad.write_text('{"format": "something-else"}', encoding="utf-8")
    report = cli_json(db, "import", "bundle", str(bad.parent), "--json")
    assert report["violations"][0]["action"] == "skipped"


def _wait(condition: object, timeout: float = 30.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _session(db: Path, sid: str) -> tuple[str, str] | None:
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT session_id, status FROM sessions WHERE session_id = ?", (sid,)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return None if row is None else (row[0], row[1])


def test_sync_is_idempotent_and_watches(source_db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    cli_json(source_db, "export", SESSIONS[0], SESSIONS[1], "--to", str(folder))
    db = tmp_path / "sync.db"
    first = cli_json(db, "sync", str(folder), "--json")
    assert next(t for t in first["tables"] if t["source_table"] == "sessions")["imported"] == 2
    second = cli_json(db, "sync", str(folder), "--json")
    assert second["totals"]["imported"] == 0
    watcher = subprocess.Popen([sys.executable, "-m", "baton", "sync", str(folder), "--watch", "--interval", "0.1",
                                "--json"], env=cli_env(db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cli_json(source_db, "export", SESSIONS[2], "--to", str(folder))
        _wait(lambda: _session(db, SESSIONS[2]) is not None)
        path = folder / SESSIONS[2] / "state.json"
        bundle = json.loads(path.read_text(encoding="utf-8"))
        bundle["session"]["status"] = "paused"
        tmp = path.with_name("state.json.tmp")
        tmp.write_text(json.dumps(bundle, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
        _wait(lambda: _session(db, SESSIONS[2]) == (SESSIONS[2], "paused"))
        # the server side keeps working while the watcher runs
        assert cli_json(db, "get-session", "--session-id", SESSIONS[0])["status"] == "completed"
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
    assert watcher.returncode == 0


def test_format_1_bundles_are_still_read(source_db: Path, tmp_path: Path) -> None:
    file = tmp_path / "a.json"
    cli_json(source_db, "export", SESSIONS[2], "--to", str(file))
    bundle = json.loads(file.read_text(encoding="utf-8"))
    old = {k: v for k, v in bundle.items()
           if k not in ("context_packages", "context_consumption", "skill_outputs", "development_plan")}
    old["format_version"] = 1
    old["task_groups"] = [{k: v for k, v in g.items() if k != "metadata"} for g in old["task_groups"]]
    file.write_text(json.dumps(old), encoding="utf-8")
    db = tmp_path / "t.db"
    report = cli_json(db, "import", "bundle", str(file), "--json")
    assert report["violations"] == [] and next(
        t for t in report["tables"] if t["source_table"] == "task_groups")["imported"] == 5
    assert "context_packages" not in {t["source_table"] for t in report["tables"] if t["source_rows"]}
    # the same format-1 bundle into the database exported from: only the core rows are compared -> unchanged
    same = cli_json(source_db, "import", "bundle", str(file), "--dry-run", "--json")
    assert same["totals"]["imported"] == 0 and same["violations"] == []
