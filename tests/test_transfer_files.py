"""`baton import files DIR`: a DevFlow-style state directory (JSON and YAML, some files broken)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.test_transfer_cli import main_json, run_main

# A `~/.claude/state/` tree as a file-based tool leaves it: one session file with its tasks inline
# (YAML), a session file and per-task JSON files, a task list, tasks naming no session, and the
# usual debris: a half-written JSON file, broken YAML, a config file that is not task state, an
# empty file, a non-UTF-8 file, and a duplicated task.
STATE: dict[str, str | bytes] = {
    "sessions/auth-rework.yaml": """\
kind: session
session_id: auth-rework
project: ledgerly
status: in_progress
mode: parallel
branch: feature/auth-rework
description: Replace the session-cookie login with OAuth2 + PKCE; keep remember-me.
created_at: 2026-02-02T09:00:00Z
owner: dana
labels: [security, q1]
tasks:
  - id: AUTH-1
    title: OAuth2 authorization-code flow with PKCE
    status: done
    priority: high
    tags: [backend, security]
    assignee: developer_1
    complexity: 6
    created_at: 2026-02-02T09:05:00Z
    updated_at: 2026-02-02T11:40:00Z
    data:
      endpoints: [/oauth/authorize, /oauth/token]
      notes: "PKCE S256 only — plain rejected"
  - id: AUTH-2
    title: Remember-me refresh tokens (rotating)
    status: in-progress
    priority: medium
    tags: [backend]
    dependencies: [AUTH-1]
    created_at: 2026-02-02T11:45:00
""",
    "sessions/invoice-export.json": json.dumps({
        "id": "invoice-export",
        "requirements": "Export invoices as PDF and CSV with localized totals (€, ¥, ₹).",
        "status": "done",
        "created_at": "2026-01-28T14:00:00+01:00",
        "ended_at": "2026-01-29T18:30:00+01:00",
        "budget_hours": 16,
    }, indent=2, ensure_ascii=False),
    "tasks/EXP-1.json": json.dumps({
        "id": "EXP-1", "session": "invoice-export", "title": "PDF renderer (WeasyPrint)", "status": "completed",
        "priority": "high", "tags": ["pdf"], "dependencies": [], "data": {"pages": 2, "fonts": ["Inter", "Noto"]},
        "created_at": "2026-01-28T13:10:00Z", "updated_at": "2026-01-29T10:00:00Z",
    }, indent=2),
    "tasks/EXP-2.json": json.dumps({
        "id": "EXP-2", "session": "invoice-export", "title": "CSV export", "status": "closed",
        "dependencies": ["EXP-1", "LEGACY-9"], "estimate": "2h",
    }),
    "tasks/EXP 3 (totals).json": json.dumps({
        "id": "EXP 3 (totals)", "session": "invoice-export", "title": "Localized totals: 1 234,56 €",
        "status": "needs-triage", "complexity": 42, "dependencies": ["EXP-2"],
    }, ensure_ascii=False),
    "tasks/backlog.json": json.dumps([
        {"id": "B-1", "title": "Dark mode for the invoice editor", "status": "todo", "tags": ["ui"]},
        {"id": "B-2", "title": "Keyboard shortcuts", "status": "backlog", "dependencies": ["B-1"]},
    ]),
    "tasks/stale/EXP-1.json": json.dumps({"id": "EXP-1", "session": "invoice-export", "title": "stale copy",
                                         "status": "pending"}),
    "tasks/half-written.json": '{"id": "EXP-4", "session": "invoice-export", "title": "Emails",\n  "status": ',
    "tasks/broken.yaml": "id: EXP-5\ntitle: [unclosed\nstatus: todo\n",
    "config.yaml": "theme: dark\nauto_save: true\n",
    "notes/empty.json": "",
    "notes/latin1.json": '{"id": "X", "title": "caf\xe9"}'.encode("latin-1"),
    "README.md": "not state: ignored, not counted",
}
SKIPPED = {
    "tasks/half-written.json": "malformed JSON",
    "tasks/broken.yaml": "malformed YAML",
    "config.yaml": "no task or session in it",
    "notes/empty.json": "empty file",
    "notes/latin1.json": "not UTF-8 text",
}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    for name, content in STATE.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def digest_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def table(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in report["tables"] if t["source_table"] == name)


def test_import_files_maps_sessions_and_tasks(state_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "baton.db"
    before = digest_tree(state_dir)
    report = main_json(db, "import", "files", str(state_dir), "--session", "inbox", "--json")
    assert report["committed"] is True
    files = table(report, "files")
    assert files["source_rows"] == 12 and files["imported"] == 7 and files["skipped"] == 5
    for name, reason in SKIPPED.items():  # every skipped file named, with its reason
        assert any(n.startswith(f"skipped {name}: {reason}") for n in report["notes"]), name
    assert any("line 2" in n for n in report["notes"] if n.startswith("skipped tasks/half-written.json"))
    sessions = table(report, "sessions")
    assert (sessions["source_rows"], sessions["imported"], sessions["target_after"]) == (2, 2, 3)  # + inbox
    tasks = table(report, "tasks")
    assert (tasks["source_rows"], tasks["imported"], tasks["skipped"]) == (8, 7, 1)
    assert tasks["skipped_reasons"] == {"duplicate task id in the source (the first one is imported)": 1}
    assert [v["problem"] for v in report["violations"]] == ["status 'needs-triage' has no Baton equivalent",
                                                            "complexity 42 not in 1-10"]
    assert digest_tree(state_dir) == before  # the source is never modified

    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    s = {r["session_id"]: r for r in conn.execute("SELECT * FROM sessions")}
    auth = s["auth-rework"]
    assert (auth["status"], auth["mode"], auth["project"], auth["initial_branch"]) == (
        "active", "parallel", "ledgerly", "feature/auth-rework")
    assert auth["requirements"].startswith("Replace the session-cookie login")
    assert auth["created_at"] == "2026-02-02T09:00:00.000Z"
    meta = json.loads(auth["metadata"])
    assert meta["owner"] == "dana" and meta["labels"] == ["security", "q1"] and meta["source_status"] == "in_progress"
    export = s["invoice-export"]
    assert (export["status"], export["created_at"], export["ended_at"]) == (
        "completed", "2026-01-28T13:00:00.000Z", "2026-01-29T17:30:00.000Z")
    assert json.loads(export["metadata"])["budget_hours"] == 16
    assert s["inbox"]["status"] == "active" and "import files" in s["inbox"]["requirements"]

    g = {(r["session_id"], r["group_id"]): r for r in conn.execute("SELECT * FROM task_groups")}
    a1 = g[("auth-rework", "AUTH-1")]
    assert (a1["name"], a1["status"], a1["assigned_to"], a1["complexity"]) == (
        "OAuth2 authorization-code flow with PKCE", "completed", "developer_1", 6)
    a1_meta = json.loads(a1["metadata"])
    assert a1_meta["priority"] == "high" and a1_meta["tags"] == ["backend", "security"]
    assert a1_meta["data"] == {"endpoints": ["/oauth/authorize", "/oauth/token"],
                               "notes": "PKCE S256 only — plain rejected"}
    assert a1_meta["source_status"] == "done" and a1_meta["files_import"] == {"file": "sessions/auth-rework.yaml"}
    a2 = g[("auth-rework", "AUTH-2")]
    assert (a2["status"], json.loads(a2["depends_on"]), a2["created_at"]) == (
        "in_progress", ["AUTH-1"], "2026-02-02T11:45:00.000Z")
    e1 = g[("invoice-export", "EXP-1")]
    assert e1["name"] == "PDF renderer (WeasyPrint)"  # the first in path order, not tasks/stale/
    assert any("tasks/stale/EXP-1.json" in n and "repeats the one in tasks/EXP-1.json" in n for n in report["notes"])
    assert json.loads(e1["metadata"])["data"] == {"pages": 2, "fonts": ["Inter", "Noto"]}
    e2 = g[("invoice-export", "EXP-2")]
    assert json.loads(e2["depends_on"]) == ["EXP-1"]
    e2_meta = json.loads(e2["metadata"])
    assert e2_meta["unresolved_dependencies"] == ["LEGACY-9"] and e2_meta["estimate"] == "2h"
    e3 = next(r for (sid, gid), r in g.items() if gid.startswith("EXP-3-totals"))
    e3_meta = json.loads(e3["metadata"])
    assert e3_meta["source_id"] == "EXP 3 (totals)" and e3_meta["source_status"] == "needs-triage"
    assert (e3["status"], e3["complexity"], e3_meta["complexity"]) == ("pending", None, 42)
    assert json.loads(e3["depends_on"]) == ["EXP-2"] and e3["name"] == "Localized totals: 1 234,56 €"
    assert {gid for (sid, gid) in g if sid == "inbox"} == {"B-1", "B-2"}
    assert json.loads(g[("inbox", "B-2")]["depends_on"]) == ["B-1"]
    conn.close()
    # the imported groups are ordinary Baton groups
    listed = main_json(db, "get-task-groups", "--session-id", "auth-rework")
    assert [x["group_id"] for x in listed["items"]] == ["AUTH-1", "AUTH-2"]

    again = main_json(db, "import", "files", str(state_dir), "--session", "inbox", "--json")
    assert again["totals"]["imported"] - table(again, "files")["imported"] == 0
    assert table(again, "tasks")["skipped_reasons"]["already imported (same content)"] == 7
    assert table(again, "sessions")["skipped_reasons"] == {"already imported (same content)": 2}
    assert all(t["target_before"] == t["target_after"] for t in again["tables"] if t["target_before"] is not None)


def test_dry_run_strict_and_changed_files(state_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "baton.db"
    dry = main_json(db, "import", "files", str(state_dir), "--dry-run", "--json")
    assert dry["dry_run"] is True and table(dry, "tasks")["imported"] == 5 and not db.exists()
    # without --session, the backlog tasks name no session: skipped and said so
    assert table(dry, "tasks")["skipped_reasons"]["no session (the task names none; pass --session)"] == 2
    strict = run_main(db, "import", "files", str(state_dir), "--strict", "--json")
    assert strict.returncode == 2 and "needs-triage" in strict.stderr and "nothing was written" in strict.stderr
    assert not db.exists() or sqlite3.connect(db).execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    main_json(db, "import", "files", str(state_dir / "tasks" / "EXP-1.json"), "--json")  # one file
    changed = state_dir / "tasks" / "EXP-1.json"
    data = json.loads(changed.read_text())
    data["status"] = "failed"
    changed.write_text(json.dumps(data))
    again = main_json(db, "import", "files", str(changed), "--json")
    assert table(again, "tasks")["skipped_reasons"] == {
        "already imported; changed in the file since, not overwritten": 1}
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM task_groups WHERE group_id = 'EXP-1'").fetchone()[0] == "completed"
    conn.close()


def test_text_report_and_missing_directory(state_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "baton.db"
    out = run_main(db, "import", "files", str(state_dir), "--session", "inbox")
    assert out.returncode == 0, out.stderr
    assert "files" in out.stdout and "task_groups" in out.stdout
    assert "skipped tasks/broken.yaml: malformed YAML" in out.stdout
    missing = run_main(db, "import", "files", str(tmp_path / "nowhere"))
    assert missing.returncode == 3 and json.loads(missing.stderr)["error"]["code"] == "not_found"


def test_a_time_outside_the_calendar_is_noted_and_not_used(tmp_path: Path) -> None:
    """A session or task time past 9999 or before year 1 in UTC (as text, or as epoch seconds) is handled as
    one that is no time: noted with its file and key, not used; the rows still import (it was
    `OverflowError`)."""
    root = tmp_path / "state"
    root.mkdir()
    (root / "far.json").write_text(json.dumps({
        "kind": "session", "session_id": "far", "requirements": "r", "created_at": "9999-12-31T23:59:59-01:00",
        "updated_at": "0001-01-01T00:00:00+01:00",
        "tasks": [{"id": "T-1", "title": "t", "created_at": 1e30, "updated_at": -1e20}]}))
    report = main_json(tmp_path / "baton.db", "import", "files", str(root), "--json")
    assert table(report, "sessions")["imported"] == 1 and table(report, "tasks")["imported"] == 1
    for key, value in (("created_at", "'9999-12-31T23:59:59-01:00'"), ("updated_at", "'0001-01-01T00:00:00+01:00'"),
                       ("created_at", "1e+30"), ("updated_at", "-1e+20")):
        assert f"far.json: {key} {value} is out of range in UTC; not used" in report["notes"], report["notes"]
