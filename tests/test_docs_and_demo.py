"""The README, the client configs and the demo agree with the code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from baton.docs import render
from baton.tools import catalog
from tests.helpers import ROOT, cli_env


def test_readme_tables_match_the_operation_table() -> None:
    """The README's generated blocks are what the operation table renders today."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert render(readme) == readme, "README.md is stale: run `python -m baton.docs`"
    for name in catalog():
        assert f"| `{name}` |" in readme


def test_readme_opens_with_the_two_fresh_machine_commands() -> None:
    """The first two code blocks are the run command and the test command that CI executes."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [part.split("```", 1)[0].strip() for part in readme.split("```sh\n")[1:3]]
    assert blocks[0].endswith("baton demo")
    assert "pip install -q -e '.[dev]'" in blocks[1] and blocks[1].endswith("pytest -q")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "install -q -e '.[dev]'" in ci


def test_client_configs_spawn_baton_serve() -> None:
    """mcp.json (Claude Code, Inspector) and .vscode/mcp.json (VS Code) both start `baton serve`."""
    root_config = json.loads((ROOT / "mcp.json").read_text())
    assert root_config["mcpServers"]["baton"] == {"command": "baton", "args": ["serve"]}
    vscode = json.loads((ROOT / ".vscode" / "mcp.json").read_text())
    assert vscode["servers"]["baton"] == {"type": "stdio", "command": "baton", "args": ["serve"]}


def test_demo_without_db_leaves_the_real_database_untouched(tmp_path: Path) -> None:
    """Without --db the demo uses a temporary database: neither BATON_DB nor the user data directory is written."""
    env = {**cli_env(tmp_path / "real.db"), "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "baton", "demo"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Dashboard snapshot" in proc.stdout and "now removed" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "the demo wrote outside its temporary directory"


def test_demo_runs_an_orchestration_through_a_real_server(tmp_path: Path) -> None:
    """`baton demo` drives a real stdio server and its dashboard reflects every step."""
    db = tmp_path / "demo.db"
    proc = subprocess.run(
        [sys.executable, "-m", "baton", "demo", "--db", str(db), "--json"],
        env=cli_env(db), capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    snapshot = json.loads(proc.stdout)
    assert snapshot["session"]["project"] == "baton-demo"
    assert snapshot["task_groups"]["by_status"] == {"in_progress": 1, "approved_pending_merge": 1}
    ui = next(g for g in snapshot["task_groups"]["items"] if g["group_id"] == "UI")
    assert (ui["qa_attempts"], ui["tl_review_attempts"]) == (1, 1)
    assert snapshot["success_criteria"]["met"] == 1 and snapshot["success_criteria"]["total"] == 3
    assert snapshot["token_summary"]["total"] == 1800 + 2400 + 9000 + 2600 + 5100
    assert snapshot["counts"]["interactions"] == 2 and snapshot["reasoning"] == {"understanding": 1}
    assert any(entry["redacted"] for entry in snapshot["recent_logs"])
    assert "sk-demo" not in proc.stdout
