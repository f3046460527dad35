"""`baton merge`: Baton and BAZINGA databases folded in; id conflicts reported and resolved by content."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
