"""Shared test helpers: run operations through the table, the CLI as a subprocess, a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from baton.store import Store
from baton.tools import catalog

ROOT = Path(__file__).resolve().parents[1]


async def call(store: Store, name: str, **arguments: Any) -> Any:
    """Run one operation through the operation table (validation included) and return it as a dict."""
    result: BaseModel = await catalog()[name].run(store, arguments)
    return result.model_dump(mode="json")


def cli_env(db_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env["BATON_DB"] = str(db_path)
    return env


def run_cli(db_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m baton ARGS` against db_path; returns the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "baton", *args],
        env=cli_env(db_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli_json(db_path: Path, *args: str) -> Any:
    """Run the CLI and return its stdout JSON, failing loudly if it did not succeed."""
    proc = run_cli(db_path, *args)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout)


def serve_command(db_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "baton", "serve", "--db", str(db_path), *extra]
