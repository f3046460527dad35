"""The CLI twin as real subprocesses: flags and --json, JSON out, error JSON and exit codes, a shared database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from baton.store import Store
from tests.core_helpers import dump_tables, ok, run_cli_at_once
from tests.helpers import call, cli_env, cli_json, run_cli, serve_command


def _error(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert proc.stdout == "", "a failure prints nothing on stdout"
    error: dict[str, str] = json.loads(proc.stderr)["error"]
    return error


def test_flags_with_hyphens_or_underscores_and_json_values(db_path: Path) -> None:
    """`--param value` works with either spelling; structured values are given as JSON text."""
    created = cli_json(db_path, "create-session", "--session-id", "s", "--requirements", "ship it", "--mode",
                       "parallel", "--initial_branch", "main", "--metadata", '{"testing_mode": "full"}')
    assert (created["session_id"], created["mode"], created["initial_branch"], created["metadata"],
            created["created"]) == ("s", "parallel", "main", {"testing_mode": "full"}, True)
    group = cli_json(db_path, "create-task-group", "--session_id", "s", "--group-id", "A", "--name", "API",
                     "--complexity", "7", "--security-sensitive", "true", "--specializations", '["python"]')
    assert (group["complexity"], group["security_sensitive"], group["specializations"]) == (7, True, ["python"])
    updated = cli_json(db_path, "update-task-group", "--session-id", "s", "--group-id", "A", "--increment",
                       '{"qa_attempts": 2}', "--status", "in_progress")
    assert (updated["qa_attempts"], updated["status"]) == (2, "in_progress")
    assert cli_json(db_path, "get-session", "--session_id", "s") == {k: v for k, v in created.items()
                                                                     if k != "created"}


def test_json_argument_object(db_path: Path) -> None:
    """`--json '{...}'` passes every parameter at once, including lists of objects."""
    cli_json(db_path, "create-session", "--json", json.dumps({"session_id": "s", "requirements": "r"}))
    saved = cli_json(db_path, "save-success-criteria", "--json", json.dumps({
        "session_id": "s", "criteria": [{"criterion": "tests pass"}, {"criterion": "docs",
                                                                      "required_for_completion": False}]}))
    assert [c["criterion"] for c in saved["items"]] == ["tests pass", "docs"]
    summary = cli_json(db_path, "get-success-criteria", "--json", '{"session_id": "s"}')
    assert (summary["total"], summary["required_unmet"]) == (2, 1)


def test_db_option_before_or_after_the_operation(tmp_path: Path) -> None:
    """`baton --db X op`, `baton --db=X op` and `baton op --db X` all use X, over BATON_DB."""
    chosen, ignored = tmp_path / "chosen.db", tmp_path / "env.db"
    env = cli_env(ignored)
    for argv in (["--db", str(chosen), "create-session", "--session-id", "a", "--requirements", "r"],
                 [f"--db={chosen}", "create-session", "--session-id", "c", "--requirements", "r"],
                 ["create-session", "--session-id", "b", "--requirements", "r", "--db", str(chosen)]):
        proc = subprocess.run([sys.executable, "-m", "baton", *argv], env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
    health = cli_json(chosen, "health")
    assert health["db_path"] == str(chosen) and health["counts"]["sessions"] == 3
    assert not ignored.exists()


async def test_errors_are_json_on_stderr_with_their_exit_codes(store: Store, db_path: Path, tmp_path: Path) -> None:
    """invalid exits 2, not_found 3, conflict and invalid_transition 4, anything else 1; nothing is written."""
    await call(store, "create-session", session_id="s", requirements="r")
    await call(store, "update-session-status", session_id="s", status="completed", force=True, reason="test")
    unusable = tmp_path / "a-file"
    await anyio.Path(unusable).write_text("x")
    cases: list[tuple[list[str], int, str]] = [
        (["create-session", "--requirements", ""], 2, "invalid"),
        (["create-session", "--json", "{not json"], 2, "invalid"),
        (["get-session", "--session-id", "$SESSION_ID"], 2, "invalid"),
        (["create-task-group", "--session-id", "s", "--group-id", "A", "--name", "a", "--complexity", "high"], 2,
         "invalid"),
        (["get-session", "--session-id", "ghost"], 3, "not_found"),
        (["create-session", "--session-id", "s", "--requirements", "other"], 4, "conflict"),
        (["update-session-status", "--session-id", "s", "--status", "active"], 4, "invalid_transition"),
        (["health", "--db", str(unusable / "baton.db")], 1, "storage"),
    ]
    before = dump_tables(db_path)
    finished = await anyio.to_thread.run_sync(lambda: run_cli_at_once(db_path, *(case[0] for case in cases)))
    for (argv, exit_code, code), proc in zip(cases, finished, strict=True):
        assert (proc.returncode, _error(proc)["code"]) == (exit_code, code), (argv, proc.stderr)
    assert "placeholder" in _error(finished[2])["message"]
    assert dump_tables(db_path) == before


_NO_MCP = """
import sys
from baton.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(sorted(m for m in sys.modules if m == "mcp" or m.startswith("mcp.")), code, file=sys.stderr)
print(sorted(m for m in sys.modules if m.startswith("baton.tools.") and not m.startswith("baton.tools._")),
      file=sys.stderr)
"""


def test_the_cli_does_not_import_the_mcp_sdk(db_path: Path) -> None:
    """Running an operation from the CLI never imports the MCP SDK (about a second of start-up)."""
    argv = ["create-session", "--session-id", "s", "--requirements", "r"]
    proc = subprocess.run([sys.executable, "-c", _NO_MCP, "--db", str(db_path), *argv], env=cli_env(db_path),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.stderr.strip().splitlines()[-2] == "[] 0", proc.stderr
    # Only the operation's own module is loaded (each module's models cost start-up time).
    assert proc.stderr.strip().splitlines()[-1] == "['baton.tools.sessions']", proc.stderr
    assert json.loads(proc.stdout)["created"] is True
    importtime = subprocess.run([sys.executable, "-X", "importtime", "-m", "baton", "get-session", "--session-id",
                                 "s"], env=cli_env(db_path), capture_output=True, text=True, timeout=60, check=False)
    modules = [line.rsplit("|", 1)[-1].strip() for line in importtime.stderr.splitlines() if "|" in line]
    assert "baton.cli" in modules and not [m for m in modules if m.split(".")[0] == "mcp"]


def test_operations_by_module_indexes_exactly_what_the_modules_declare() -> None:
    """The CLI finds an operation's module through OPERATIONS_BY_MODULE; it must match the declarations."""
    from baton.tools import CORE_MODULES, OPERATIONS_BY_MODULE, catalog, find

    declared: dict[str, list[str]] = {}
    for name, op in catalog().items():
        declared.setdefault(op.handler.__module__.removeprefix("baton.tools."), []).append(name)
    assert {module: list(names) for module, names in OPERATIONS_BY_MODULE.items()} == declared
    assert all(find(name) is op for name, op in catalog().items()) and find("no-such-tool") is None
    core = [name for name, op in catalog().items() if op.profile == "core"]
    assert {module for module, names in OPERATIONS_BY_MODULE.items() if set(names) & set(core)} == set(CORE_MODULES)


async def test_cli_writes_while_a_server_writes_the_same_database(db_path: Path) -> None:
    """CLI processes and a running `baton serve` write one file at once; every write of both is there."""
    command, *args = serve_command(db_path, "--log-level", "WARNING")
    params = StdioServerParameters(command=command, args=args)
    cli_logs = 3

    async def cli(*argv: str) -> dict[str, Any]:
        proc = await anyio.run_process([sys.executable, "-m", "baton", *argv], env=cli_env(db_path), check=False)
        assert proc.returncode == 0, proc.stderr.decode()
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    async def cli_log(index: int) -> None:
        await cli("log-interaction", "--session-id", "s", "--agent-type", "developer", "--content", f"cli {index}")

    async def cli_increment() -> None:
        await cli("update-task-group", "--session-id", "s", "--group-id", "A", "--increment", '{"qa_attempts": 5}')

    with anyio.fail_after(90):
        async with Client(params) as client:
            ok(await client.call_tool("create-session", {"session_id": "s", "requirements": "r"}))
            ok(await client.call_tool("create-task-group", {"session_id": "s", "group_id": "A", "name": "a"}))

            async def mcp_writer(index: int) -> None:
                ok(await client.call_tool("log-interaction", {"session_id": "s", "agent_type": "qa_expert",
                                                              "content": f"mcp {index}"}))
                ok(await client.call_tool("update-task-group", {"session_id": "s", "group_id": "A",
                                                                "increment": {"qa_attempts": 1}}))

            async with anyio.create_task_group() as tg:
                for index in range(cli_logs):
                    tg.start_soon(cli_log, index)
                tg.start_soon(cli_increment)
                for index in range(30):
                    tg.start_soon(mcp_writer, index)
            through_mcp = ok(await client.call_tool("dashboard-snapshot", {"session_id": "s"}))
            logs = ok(await client.call_tool("get-logs", {"session_id": "s", "limit": 100}))
            through_cli = await cli("dashboard-snapshot", "--session-id", "s")
    for snapshot in (through_mcp, through_cli):
        assert snapshot["counts"]["interactions"] == 30 + cli_logs
        assert snapshot["task_groups"]["items"][0]["qa_attempts"] == 30 + 5
    assert logs["next_cursor"] is None
    contents = [entry["content"] for entry in logs["items"]]
    assert sorted(contents) == sorted([f"mcp {i}" for i in range(30)] + [f"cli {i}" for i in range(cli_logs)])
    assert through_mcp["task_groups"] == through_cli["task_groups"]


_SHORT_BUSY = """
import sys
import baton.store
baton.store.BUSY_TIMEOUT_MS = 20  # the retry schedule, shortened
from baton.cli import main
main(sys.argv[1:])
"""


def test_busy_database_exits_5(db_path: Path) -> None:
    """A write that cannot get the lock from another process exits 5 with a `busy` error JSON."""
    cli_json(db_path, "create-session", "--session-id", "s", "--requirements", "r")
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        proc = subprocess.run([sys.executable, "-c", _SHORT_BUSY, "log-interaction", "--session-id", "s",
                               "--agent-type", "developer", "--content", "x"], env=cli_env(db_path),
                              capture_output=True, text=True, timeout=60, check=False)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert proc.returncode == 5 and _error(proc)["code"] == "busy"
    assert cli_json(db_path, "get-logs", "--session-id", "s")["items"] == []


def test_an_explicit_db_in_a_missing_directory_or_a_url_is_refused(tmp_path: Path) -> None:
    """A mistyped --db or BATON_DB (missing directory, a URL) is `invalid` and creates nothing."""
    typo = tmp_path / "no-such-dir" / "baton.db"
    for argv, env_db in ((["health", "--db", str(typo)], tmp_path / "unused.db"), (["health"], typo),
                         (["serve", "--db", str(typo)], tmp_path / "unused.db"),
                         (["health", "--db", "mysql://u:secret@host/db"], tmp_path / "unused.db")):
        proc = subprocess.run([sys.executable, "-m", "baton", *argv], env=cli_env(env_db), capture_output=True,
                              text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, (argv, proc.stderr)
        error = _error(proc)
        assert error["code"] == "invalid" and "secret" not in error["message"], error
        assert ("does not exist" in error["message"]) or ("URL" in error["message"]), error
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a refused path created files"


def test_flag_mistakes_and_unknown_commands_are_json_errors_with_a_suggestion(db_path: Path) -> None:
    """A misspelt flag or command is the same JSON `invalid` error (exit 2) as other bad input, with did-you-mean."""
    flag = run_cli(db_path, "create-session", "--requirements", "r", "--sesion-id", "x")
    command = run_cli(db_path, "helth")
    assert (flag.returncode, command.returncode) == (2, 2)
    assert "did you mean --session-id?" in _error(flag)["message"]
    assert "did you mean 'health'?" in _error(command)["message"]
    assert not db_path.exists()


def test_json_parameters_from_a_file_or_stdin(db_path: Path, tmp_path: Path) -> None:
    """`--json @FILE` and `--json -` carry a batch too large for a command line (600 KB here)."""
    cli_json(db_path, "create-session", "--session-id", "s", "--requirements", "r")
    entries = [{"agent_type": "developer", "content": "x" * 3000} for _ in range(200)]
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"session_id": "s", "entries": entries}))
    from_file = cli_json(db_path, "log-interactions", "--json", f"@{batch}")
    from_stdin = subprocess.run([sys.executable, "-m", "baton", "log-interactions", "--json", "-"],
                                input=batch.read_text(), env=cli_env(db_path), capture_output=True, text=True,
                                timeout=60, check=False)
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_file["count"] == json.loads(from_stdin.stdout)["count"] == 200
    missing = run_cli(db_path, "log-interactions", "--json", f"@{tmp_path / 'nope.json'}")
    assert missing.returncode == 2 and "cannot read the file" in _error(missing)["message"]


def test_a_read_only_command_does_not_create_a_database(tmp_path: Path) -> None:
    """`baton health` (or any read) on a path with no database is not_found and creates nothing."""
    proc = run_cli(tmp_path / "typo.db", "health")
    assert proc.returncode == 3 and _error(proc)["code"] == "not_found"
    assert list(tmp_path.iterdir()) == []


def test_output_into_a_closed_pipe_ends_quietly(db_path: Path) -> None:
    """`baton ... | head` closing early: no BrokenPipeError traceback on stderr."""
    cli_json(db_path, "create-session", "--session-id", "s", "--requirements", "r" * 100_000)
    proc = subprocess.Popen([sys.executable, "-m", "baton", "get-session", "--session-id", "s", "--max-chars", "20000"],
                            env=cli_env(db_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before the output is written
    with proc.stderr:
        stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and "Traceback" not in stderr, stderr
