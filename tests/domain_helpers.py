"""Helpers for the full-profile domain tests."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from baton.store import Store
from baton.tools import catalog
from tests.helpers import cli_env


async def op(store: Store, operation: str, /, **arguments: Any) -> Any:
    """Run one operation through the table (validation included); arguments may include `name`."""
    result: BaseModel = await catalog()[operation].run(store, arguments)
    return result.model_dump(mode="json")


def run_concurrently(
    db_path: Path, commands: list[list[str]], timeout: float = 120
) -> list[subprocess.CompletedProcess[str]]:
    """Start every `python -m baton ...` command at once, then wait for all of them."""
    procs = [
        subprocess.Popen([sys.executable, "-m", "baton", *args], env=cli_env(db_path), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for args in commands
    ]
    done = []
    for proc, args in zip(procs, commands, strict=True):
        out, err = proc.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def baton_in_process(db_path: Path, *args: str) -> tuple[int, str, str]:
    """Run `baton ARGS --db db_path` in this process (same code as the CLI, without interpreter start-up)."""
    from baton.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([*args, "--db", str(db_path)])
        except SystemExit as exit_:
            code = exit_.code
    return int(code or 0), out.getvalue(), err.getvalue()
