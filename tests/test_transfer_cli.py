"""The transfer and maintenance commands called in-process (`baton.cli.main`), and their CLI plumbing.

Most transfer tests are about what lands in the database, not about processes: they call the
command's real `main()` in this process (same argument parsing, same exit codes, same stdout and
stderr) and save the ~0.6 s interpreter start-up of a subprocess. Tests where the process itself
matters (a watcher running beside a server, the machine's time zone, servers holding the
database, concurrent writers) keep real subprocesses.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import run_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bazinga"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_main(db: Path, *args: str) -> Result:
    """`baton ARGS --db DB` through `baton.cli.main` in this process."""
    from baton.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([*args, "--db", str(db)])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Result(code, out.getvalue(), err.getvalue())


def main_json(db: Path, *args: str) -> Any:
    """Run in-process and return the stdout JSON, failing loudly if the command did not succeed."""
    result = run_main(db, *args)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return json.loads(result.stdout)


def test_in_process_and_subprocess_agree(tmp_path: Path) -> None:
    """The in-process runner is the same program: same output bytes, same exit codes."""
    fixture = FIXTURES / "bazinga-v19.db"
    assert fixture.is_file(), f"BAZINGA fixture missing: {fixture}"
    inproc, sub = tmp_path / "a.db", tmp_path / "b.db"
    one = run_main(inproc, "import", "bazinga", str(fixture), "--json")
    two = run_cli(sub, "import", "bazinga", str(fixture), "--json")
    assert (one.returncode, two.returncode) == (0, 0), (one.stderr, two.stderr)
    strip = {"target"}
    a = {k: v for k, v in json.loads(one.stdout).items() if k not in strip}
    b = {k: v for k, v in json.loads(two.stdout).items() if k not in strip}
    assert a == b
    bad_in = run_main(inproc, "import", "bazinga", str(tmp_path / "missing.db"))
    bad_sub = run_cli(sub, "import", "bazinga", str(tmp_path / "missing.db"))
    assert bad_in.returncode == bad_sub.returncode == 3
    assert json.loads(bad_in.stderr)["error"]["code"] == json.loads(bad_sub.stderr)["error"]["code"] == "not_found"


def test_text_report_is_a_table_with_reasons(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    out = run_main(db, "import", "bazinga", str(FIXTURES / "bazinga-v15.db"), "--dry-run")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].endswith("[DRY RUN (nothing written)]")
    header = next(line for line in lines if line.startswith("source table"))
    assert header.split() == ["source", "table", "baton", "table", "source", "imported", "skipped", "target",
                              "before", "target", "after"]
    row = next(line for line in lines if line.startswith("orchestration_logs"))
    assert row.split()[:5] == ["orchestration_logs", "logs", "128", "128", "0"]
    assert any("workflow_transitions: 44 x BAZINGA's seeded workflow configuration" in line for line in lines)
    assert not db.exists()


def test_unknown_or_missing_arguments_are_usage_errors(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    assert run_main(db, "import").returncode == 2
    assert run_main(db, "import", "nothing", "x").returncode == 2
    assert run_main(db, "import", "files").returncode == 2
    assert not db.exists()


def test_same_file_as_source_and_target_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    main_json(db, "create-session", "--session-id", "s", "--requirements", "r")
    refused = run_main(db, "merge", str(db))
    assert refused.returncode == 2 and "target database itself" in refused.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1
    conn.close()
