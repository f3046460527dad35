"""A real external client: the MCP Inspector CLI (`@modelcontextprotocol/inspector`, node) drives `baton serve`.

Each call starts the Inspector with `npx`, which spawns a fresh `baton serve` on the test's
database, so state carries from call to call through the file; the HTTP cases instead point the
Inspector at one `baton serve --transport http` process, with the key in an `Authorization`
header. The Inspector's exit codes are part of what is checked: 0 ok, 5 tool error or unknown
tool, 6 `--strict` schema findings, 3 a 401 it cannot answer without interactive OAuth.
In CI (CI=true) these tests must run: a missing npx is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from baton.tools import catalog
from tests.helpers import ROOT, cli_json
from tests.test_http import ServerProcess, http_process

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


@pytest.fixture(scope="module")
def npx() -> str:
    found = shutil.which("npx")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("npx is not installed; CI must run the MCP Inspector checks (install node >= 20)")
        pytest.skip("npx is not installed (node >= 20 runs the MCP Inspector)")
    return found


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    # `baton` in mcp.json resolves to this installation, as it would for a user who installed it.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def inspector(npx: str, *args: str) -> tuple[int, Any, str]:
    """Run the Inspector CLI once: (exit code, stdout parsed as JSON or None, stderr)."""
    proc = subprocess.run(
        [npx, "--yes", INSPECTOR, "--cli", *args, "--format", "json"],
        env=_environment(), capture_output=True, text=True, timeout=180, check=False, cwd=ROOT,
        stdin=subprocess.DEVNULL,  # no TTY: on a 401 the Inspector would otherwise start an interactive OAuth login
    )
    try:
        payload = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        pytest.fail(f"the Inspector printed something that is not JSON: {proc.stdout[:500]!r}\n{proc.stderr[-2000:]}")
    return proc.returncode, payload, proc.stderr


def serve(db_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "baton", "serve", "--db", str(db_path), *extra]


def call(npx: str, db_path: Path, tool: str, arguments: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    code, payload, stderr = inspector(npx, *serve(db_path), "--method", "tools/call", "--tool-name", tool,
                                      "--tool-args-json", json.dumps(arguments), "-q")
    assert payload is not None, f"{tool}: exit {code}, nothing on stdout\n{stderr[-2000:]}"
    return code, payload["result"]


@pytest.mark.parametrize("profile", ["core", "all"])
def test_tools_list_has_no_schema_portability_findings(npx: str, db_path: Path, profile: str) -> None:
    """`tools/list --strict` exits 0 with no findings, and lists exactly the profile's tools."""
    code, payload, stderr = inspector(npx, *serve(db_path, "--tools", profile), "--method", "tools/list", "--strict")
    findings = [line for line in stderr.splitlines() if line.startswith(("Warning: tool", "Error: tool"))]
    assert code == 0 and findings == [], stderr[-4000:]
    names = {tool["name"] for tool in payload["result"]["tools"]}
    wanted = {op.name for op in catalog().values() if profile == "all" or op.profile == "core"}
    assert names == wanted


def test_scripted_orchestration_through_the_inspector(npx: str, db_path: Path) -> None:
    """A short orchestration of tools/call, checked on the JSON printed and the exit codes."""
    code, created = call(npx, db_path, "create-session", {"session_id": "insp-1", "requirements": "via Inspector",
                                                          "mode": "parallel"})
    assert code == 0 and created["isError"] is False
    assert created["structuredContent"]["created"] is True and created["structuredContent"]["mode"] == "parallel"

    code, group = call(npx, db_path, "create-task-group", {"session_id": "insp-1", "group_id": "API", "name": "API"})
    assert code == 0 and group["structuredContent"]["status"] == "pending"

    code, moved = call(npx, db_path, "update-task-group", {"session_id": "insp-1", "group_id": "API",
                                                           "status": "in_progress", "increment": {"qa_attempts": 1}})
    assert code == 0
    assert (moved["structuredContent"]["status"], moved["structuredContent"]["qa_attempts"]) == ("in_progress", 1)

    # --tool-arg parses values as JSON: iteration=3 arrives as a number.
    code, payload, stderr = inspector(npx, *serve(db_path), "--method", "tools/call", "--tool-name", "log-interaction",
                                      "--tool-arg", "session_id=insp-1", "agent_type=developer",
                                      "content=started the API", "iteration=3", "-q")
    assert code == 0, stderr[-2000:]
    assert payload["result"]["structuredContent"]["content_length"] == len("started the API")

    code, refused = call(npx, db_path, "update-task-group", {"session_id": "insp-1", "group_id": "API",
                                                             "status": "merging"})
    assert code == 5 and refused["isError"] is True
    assert "invalid_transition: " in refused["content"][0]["text"]

    code, snapshot = call(npx, db_path, "dashboard-snapshot", {"session_id": "insp-1"})
    assert code == 0
    data = snapshot["structuredContent"]
    assert data["task_groups"]["by_status"] == {"in_progress": 1} and data["counts"]["interactions"] == 1
    assert data["recent_logs"][0]["iteration"] == 3


@pytest.mark.parametrize(
    ("tool", "arguments", "code_prefix"),
    [
        ("get-session", {"session_id": "nope"}, "not_found: "),
        ("create-session", {"requirements": "x", "mode": "serial"}, "invalid: "),
    ],
)
def test_expected_errors_exit_5_with_the_error_code(
    npx: str, db_path: Path, tool: str, arguments: dict[str, Any], code_prefix: str
) -> None:
    """A tool error is isError with Baton's stable code in the text, and the Inspector exits 5."""
    code, result = call(npx, db_path, tool, arguments)
    assert code == 5 and result["isError"] is True
    assert result["content"][0]["text"].startswith(f"Error executing tool {tool}: {code_prefix}")


def test_unknown_tool_exits_5(npx: str, db_path: Path) -> None:
    """Calling a tool the server does not have is the Inspector's exit 5 with a tool_not_found error."""
    code, payload, stderr = inspector(npx, *serve(db_path), "--method", "tools/call", "--tool-name", "no-such-tool",
                                      "-q")
    assert code == 5 and payload is None
    assert json.loads(stderr.strip().splitlines()[-1])["error"]["code"] == "tool_not_found"


def test_root_mcp_json_works_as_the_inspector_config(npx: str, tmp_path: Path) -> None:
    """`--config mcp.json --server baton` starts Baton as a client would; BATON_DB picks the database."""
    db = tmp_path / "from-config.db"
    common = ["--config", str(ROOT / "mcp.json"), "--server", "baton", "-e", f"BATON_DB={db}"]
    code, payload, stderr = inspector(npx, *common, "--method", "tools/call", "--tool-name", "health", "-q")
    assert code == 0, stderr[-2000:]
    assert payload["result"]["structuredContent"]["db_path"] == str(db) and db.exists()


# -- over streamable HTTP, against a server the Inspector did not spawn ------------------------------


@pytest.fixture
def http_server(db_path: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    with http_process(db_path, tmp_path) as server:
        yield server


def over_http(npx: str, server: ServerProcess, key: str | None, *args: str) -> tuple[int, Any, str]:
    """The Inspector CLI against `server`/mcp, sending `key` the way docs/http.md shows it."""
    header = ["--header", f"Authorization: Bearer {key}"] if key is not None else []
    return inspector(npx, f"{server.url}/mcp", "--transport", "http", *header, *args)


@pytest.mark.slow
def test_inspector_over_http_lists_and_calls_tools_as_the_keys_agent(npx: str, db_path: Path,
                                                                     http_server: ServerProcess) -> None:
    """With a write key in the header: tools/list --strict has no findings, a write succeeds and is
    audited as the key's agent over http."""
    key = cli_json(db_path, "keys", "create", "--agent-id", "inspector-bot")
    code, payload, stderr = over_http(npx, http_server, key["key"], "--method", "tools/list", "--strict")
    findings = [line for line in stderr.splitlines() if line.startswith(("Warning: tool", "Error: tool"))]
    assert code == 0 and findings == [], stderr[-4000:]
    assert {tool["name"] for tool in payload["result"]["tools"]} == {
        op.name for op in catalog().values() if op.profile == "core"}

    code, payload, stderr = over_http(npx, http_server, key["key"], "--method", "tools/call", "--tool-name",
                                      "create-session", "--tool-args-json",
                                      json.dumps({"session_id": "insp-http", "requirements": "over HTTP"}), "-q")
    assert code == 0, stderr[-2000:]
    assert payload["result"]["structuredContent"]["created"] is True
    audit = cli_json(db_path, "audit", "--session", "insp-http")["items"]
    assert [(row["agent_id"], row["key_id"], row["via"], row["tool"]) for row in audit] == [
        ("inspector-bot", key["key_id"], "http", "create-session")]


@pytest.mark.slow
def test_inspector_over_http_without_a_key_or_beyond_its_scope_is_refused(npx: str, db_path: Path,
                                                                          http_server: ServerProcess) -> None:
    """No header: the 401 stops the Inspector (exit 3, it would need interactive OAuth); a read key's
    write is the tool error `forbidden` (exit 5). Neither writes anything."""
    reader = cli_json(db_path, "keys", "create", "--agent-id", "reader", "--scopes", "read")
    code, payload, stderr = over_http(npx, http_server, None, "--method", "tools/list", "-q")
    assert code == 3 and payload is None, stderr[-2000:]
    assert json.loads(stderr.strip().splitlines()[-1])["error"]["code"] == "auth_required"

    code, payload, stderr = over_http(npx, http_server, reader["key"], "--method", "tools/call", "--tool-name",
                                      "create-session", "--tool-args-json", json.dumps({"requirements": "x"}), "-q")
    assert code == 5 and payload["result"]["isError"] is True, stderr[-2000:]
    assert payload["result"]["content"][0]["text"].startswith("Error executing tool create-session: forbidden: ")
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
