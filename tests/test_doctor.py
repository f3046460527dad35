"""`baton config` and `baton doctor` through real `python -m baton` subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from baton.tools import catalog
from tests.helpers import ROOT, cli_env, cli_json

BAZINGA_V19 = ROOT / "tests" / "fixtures" / "bazinga" / "bazinga-v19.db"


def baton(tmp_path: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with tmp_path as cwd and home, so no real client configuration is read."""
    env = {**cli_env(db), "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config")}
    return subprocess.run([sys.executable, "-m", "baton", *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)


def assert_runnable(command: str) -> None:
    assert Path(command).is_absolute() and os.access(command, os.X_OK), command


def json_after_comments(text: str) -> Any:
    return json.loads(text[text.index("\n{") :])


def make_baton_db(path: Path) -> str:
    return str(cli_json(path, "create-session", "--requirements", "doctor test")["session_id"])


def tree_snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_config_vscode_is_json_with_an_absolute_runnable_command(tmp_path: Path) -> None:
    """The VS Code block parses and its command is this installation's runnable baton."""
    proc = baton(tmp_path, tmp_path / "b.db", "config", "vscode")
    assert proc.returncode == 0, proc.stderr
    server = json.loads(proc.stdout)["servers"]["baton"]
    assert server["type"] == "stdio"
    assert_runnable(server["command"])
    assert server["args"][-1] == "serve"


def test_config_copilot_lists_the_tools_of_the_profile(tmp_path: Path) -> None:
    """The Copilot agent block carries type local, the args and the required tools allowlist."""
    db = tmp_path / "x.db"
    core = baton(tmp_path, db, "config", "copilot")
    assert core.returncode == 0, core.stderr
    server = json.loads(core.stdout)["mcpServers"]["baton"]
    assert server["type"] == "local"
    assert_runnable(server["command"])
    assert server["tools"] == [op.name for op in catalog().values() if op.profile == "core"]

    every = json.loads(baton(tmp_path, db, "config", "copilot", "--tools", "all", "--db", str(db)).stdout)
    server = every["mcpServers"]["baton"]
    assert server["args"][-4:] == ["--tools", "all", "--db", str(db)]
    assert server["tools"] == list(catalog())


def test_config_claude_code_gives_the_command_line_and_the_mcp_json(tmp_path: Path) -> None:
    """The `claude mcp add` line ends with the same runnable command as the .mcp.json block."""
    proc = baton(tmp_path, tmp_path / "b.db", "config", "claude-code")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("claude "))
    words = shlex.split(line)
    assert words[:6] == ["claude", "mcp", "add", "--scope", "user", "baton"]
    after = words[words.index("--") + 1 :]
    server = json_after_comments(proc.stdout)["mcpServers"]["baton"]
    assert after == [server["command"], *server["args"]]
    assert_runnable(server["command"])


def test_config_inspector_runs_this_baton(tmp_path: Path) -> None:
    """The Inspector line pins the tested version and spawns this installation's baton."""
    proc = baton(tmp_path, tmp_path / "b.db", "config", "inspector")
    words = shlex.split(proc.stdout)
    assert words[:4] == ["npx", "--yes", "@modelcontextprotocol/inspector@2.12.0", "--cli"]
    assert_runnable(words[4])
    assert words[-2:] == ["--method", "tools/list"]


@pytest.mark.parametrize("client", ["claude-code", "vscode", "copilot"])
def test_config_http_uses_a_key_placeholder(tmp_path: Path, client: str) -> None:
    """With --http the block is the HTTP shape, with a placeholder where the key goes."""
    url = "https://baton.example.com/mcp"
    proc = baton(tmp_path, tmp_path / "b.db", "config", client, "--http", url)
    assert proc.returncode == 0, proc.stderr
    config = json_after_comments("\n" + proc.stdout)
    server = (config.get("servers") or config["mcpServers"])["baton"]
    assert (server["type"], server["url"]) == ("http", url)
    placeholder = {"claude-code": "${BATON_KEY}", "vscode": "${input:baton-key}",
                   "copilot": "$COPILOT_MCP_BATON_KEY"}[client]
    assert server["headers"]["Authorization"] == f"Bearer {placeholder}"
    assert "baton_k" not in proc.stdout


BAD_CONFIG_ARGS = [["--tools", "nope"], ["--http", "ftp://x/mcp"], ["--http", "https://x/mcp", "--db", "a"]]


@pytest.mark.parametrize("args", BAD_CONFIG_ARGS)
def test_config_bad_input_is_invalid(tmp_path: Path, args: list[str]) -> None:
    """An unknown tool, a non-HTTP URL or --db with --http is an `invalid` error, exit 2, nothing printed."""
    proc = baton(tmp_path, tmp_path / "b.db", "config", "vscode", *args)
    assert proc.returncode == 2
    assert json.loads(proc.stderr)["error"]["code"] == "invalid"
    assert proc.stdout == ""


def test_doctor_on_a_good_setup_exits_0(tmp_path: Path) -> None:
    """A Baton database and a client file written by `baton config` are all fine."""
    db = tmp_path / "baton.db"
    session = make_baton_db(db)
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode" / "mcp.json").write_text(baton(tmp_path, db, "config", "vscode").stdout)
    proc = baton(tmp_path, db, "doctor", "--json")
    assert proc.returncode == 0, proc.stdout
    result = json.loads(proc.stdout)
    assert result["ok"] and result["problems"] == []
    database = result["database"]
    assert (database["kind"], database["is_batons"], database["journal_mode"]) == ("baton", True, "wal")
    assert database["schema_version"] == database["latest_schema_version"]
    assert database["sessions"] == {"count": 1, "newest": [session]}
    (client,) = result["clients"]
    assert client["baton_servers"][0]["command_found"]
    assert_runnable(result["install"]["command"][0])
    assert not list(tmp_path.glob("baton.db-*"))


def test_doctor_reports_a_client_command_that_does_not_exist(tmp_path: Path) -> None:
    """A .mcp.json whose baton command is missing is a problem with a fix, exit 1."""
    db = tmp_path / "baton.db"
    make_baton_db(db)
    missing = str(tmp_path / "gone" / "baton")
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"baton": {"command": missing, "args": ["serve"]}}}))
    proc = baton(tmp_path, db, "doctor")
    assert proc.returncode == 1
    assert f"PROBLEM: {tmp_path / '.mcp.json'}" in proc.stdout and missing in proc.stdout
    assert "baton config" in proc.stdout


def test_doctor_reports_a_foreign_sqlite_file_and_leaves_it_alone(tmp_path: Path) -> None:
    """A SQLite file that is not Baton's is named as such, exit 1, and not changed."""
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    before = tree_snapshot(tmp_path)
    proc = baton(tmp_path, db, "doctor", "--json")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["database"]["kind"] == "other" and result["database"]["is_batons"] is False
    assert any("is not a Baton database" in p["problem"] for p in result["problems"])
    assert tree_snapshot(tmp_path) == before


def test_doctor_without_a_database_yet_is_fine(tmp_path: Path) -> None:
    """No database file yet is not a problem: the first serve creates it; doctor creates nothing."""
    proc = baton(tmp_path, tmp_path / "new.db", "doctor", "--json")
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["database"]["exists"] is False
    assert not (tmp_path / "new.db").exists()


def test_find_databases_lists_baton_and_bazinga_and_changes_nothing(tmp_path: Path) -> None:
    """Both kinds are found with their sessions; every file stays byte-identical, no -wal/-shm appears."""
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / ".git").mkdir()
    baton_db = tree / "a" / "b" / "team.db"
    session = make_baton_db(baton_db)
    shutil.copy(BAZINGA_V19, tree / "a" / "bazinga.db")
    shutil.copy(BAZINGA_V19, tree / ".git" / "hidden.db")
    (tree / "notes.db").write_bytes(b"not sqlite at all, just text")
    before = tree_snapshot(tree)

    proc = baton(tmp_path, tmp_path / "current.db", "doctor", "--json", "--find-databases", str(tree))
    assert proc.returncode == 0, proc.stdout
    found = {Path(entry["path"]).name: entry for entry in json.loads(proc.stdout)["found_databases"]}
    assert set(found) == {"team.db", "bazinga.db"}
    assert found["team.db"]["kind"] == "baton"
    assert found["team.db"]["sessions"] == {"count": 1, "newest": [session]}
    assert found["bazinga.db"]["kind"] == "bazinga"
    assert found["bazinga.db"]["sessions"]["count"] == 3
    assert found["bazinga.db"]["sessions"]["newest"][0] == "bazinga_20260119_103047"
    assert found["bazinga.db"]["merge"] == f"baton merge {(tree / 'a' / 'bazinga.db').resolve()}"

    text = baton(tmp_path, tmp_path / "current.db", "doctor", "--find-databases", str(tree))
    assert "found bazinga:" in text.stdout and "to merge: baton merge" in text.stdout
    assert tree_snapshot(tree) == before
    assert not [p for p in tree.rglob("*") if p.name.endswith(("-wal", "-shm"))]
