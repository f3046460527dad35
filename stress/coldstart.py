"""Cold-start and upgrade races, and an older Baton against a newer database.

    python -m stress.coldstart                    # 8 servers + 4 CLIs, each scenario once
    python -m stress.coldstart --servers 8 --clis 4 --repeat 5

1. Missing database: every process starts at the same moment; each schema migration must be
   applied exactly once in total (counted from every process's log), all servers serve, no
   process errors, and the schema equals that of a database migrated by one process alone.
2. Upgrade race: the same against a database at schema version 1 holding data: the pending
   migrations are applied exactly once, exactly one backup is taken, the data survives.
3. Newer database: a database whose schema version is above this Baton's is refused by
   `baton serve` and by the CLI with `schema_too_new`, and the file's bytes are unchanged.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from stress.harness import cli_env, serve

# The CLI configures no logging of its own (it prints results, not progress); this runs the very
# same entry point with INFO logs on stderr, so its migrations are counted like a server's.
CLI_WITH_LOGS = (
    "import logging, sys; logging.basicConfig(stream=sys.stderr, level=logging.INFO); "
    "from baton.cli import main; main()"
)
_APPLIED = re.compile(r"applied migration (\S+)")


@dataclass
class RaceResult:
    scenario: str
    processes: int
    seconds: float
    applied: Counter[str]
    backups: int
    errors: list[str] = field(default_factory=list)
    served: int = 0
    schema_matches: bool = False
    data_kept: bool = True

    @property
    def ok(self) -> bool:
        from baton.migrations import load_migrations

        expected = {m.name for m in load_migrations()} if self.scenario == "missing" else {
            m.name for m in load_migrations()[1:]}
        return (not self.errors and set(self.applied) == expected and all(n == 1 for n in self.applied.values())
                and self.schema_matches and self.data_kept
                and self.backups == (0 if self.scenario == "missing" else 1))

    def line(self) -> str:
        counts = ", ".join(f"{name} x{n}" for name, n in sorted(self.applied.items())) or "none"
        return (
            f"{self.scenario} database, {self.processes} processes started at once: {self.served} servers served, "
            f"errors {len(self.errors)}; migrations applied: {counts}; backups {self.backups}; schema equals a "
            f"single-process migration: {self.schema_matches}; data kept: {self.data_kept}; {self.seconds:.1f}s"
        )


def schema_of(db_path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name").fetchall()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    return [("user_version", str(version)), *rows]


def make_old_database(db_path: Path) -> None:
    """A database at schema version 1, as the first Baton release left it, with a session in it."""
    from baton.migrations import load_migrations, migrate

    migrate(db_path, load_migrations()[:1])
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "INSERT INTO sessions (session_id, mode, status, requirements, metadata, created_at, updated_at)"
            " VALUES ('old-session', 'simple', 'active', 'from v1', '{}', '2026-01-01T00:00:00.000Z',"
            " '2026-01-01T00:00:00.000Z')")
    conn.close()


async def race(db_path: Path, scenario: str, servers: int, clis: int) -> RaceResult:
    logs_dir = db_path.parent / "logs"
    logs_dir.mkdir(exist_ok=True)
    errors: list[str] = []
    served = 0
    go = anyio.Event()

    async def server(number: int) -> None:
        nonlocal served
        with (logs_dir / f"server{number}.log").open("w") as errlog:
            await go.wait()
            try:
                async with serve(db_path, errlog, log_level="INFO") as client:
                    health = await client.call_tool("health", {})
                    created = await client.call_tool("create-session", {
                        "session_id": f"cold-{number}", "requirements": "cold start"})
                    if health.is_error or created.is_error:
                        errors.append(f"server {number}: {health.content} {created.content}")
                    else:
                        served += 1
            except Exception as exc:  # a server that did not start or died is exactly what we count
                errors.append(f"server {number}: {exc!r}")

    async def cli(number: int) -> None:
        await go.wait()
        proc = await anyio.run_process(
            [sys.executable, "-c", CLI_WITH_LOGS, "create-session", "--session-id", f"cli-{number}",
             "--requirements", "cold start"],
            env=cli_env(db_path), check=False)
        (logs_dir / f"cli{number}.log").write_bytes(proc.stderr)
        if proc.returncode != 0:
            errors.append(f"cli {number}: exit {proc.returncode}: {proc.stderr.decode()[-300:]}")

    started = time.perf_counter()
    with anyio.fail_after(300):
        async with anyio.create_task_group() as group:
            for number in range(servers):
                group.start_soon(server, number)
            for number in range(clis):
                group.start_soon(cli, number)
            go.set()
    seconds = time.perf_counter() - started
    applied: Counter[str] = Counter()
    for log in logs_dir.iterdir():
        applied.update(_APPLIED.findall(log.read_text(errors="replace")))
    backups = len(list(db_path.parent.glob(f"{db_path.name}.v*.bak")))
    reference = db_path.parent / "reference.db"
    from baton.migrations import migrate

    migrate(reference)
    data_kept = True
    if scenario == "upgrade":
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        data_kept = conn.execute("SELECT requirements FROM sessions WHERE session_id = 'old-session'").fetchone() == (
            "from v1",)
        conn.close()
    return RaceResult(scenario, servers + clis, seconds, applied, backups, errors, served,
                      schema_of(db_path) == schema_of(reference), data_kept)


@dataclass
class RefusalResult:
    serve_exit: int
    serve_error: dict[str, str]
    cli_exit: int
    cli_error: dict[str, str]
    unchanged: bool

    @property
    def ok(self) -> bool:
        return (self.serve_exit != 0 and self.serve_error.get("code") == "schema_too_new"
                and self.cli_exit != 0 and self.cli_error.get("code") == "schema_too_new" and self.unchanged)

    def line(self) -> str:
        return (
            f"newer database: `baton serve` exit {self.serve_exit} {self.serve_error.get('code')}, CLI exit "
            f"{self.cli_exit} {self.cli_error.get('code')}; file bytes unchanged: {self.unchanged}"
        )


def make_newer_database(db_path: Path) -> int:
    """A database from a future Baton: the current schema with a higher version. Returns that version."""
    from baton.migrations import latest_version, migrate

    migrate(db_path)
    newer = latest_version() + 1
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {newer}")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return newer


def _error_of(stderr: str) -> dict[str, str]:
    for line in reversed(stderr.strip().splitlines()):
        try:
            loaded = json.loads(line)
        except ValueError:
            continue
        if isinstance(loaded, dict) and isinstance(loaded.get("error"), dict):
            return {str(k): str(v) for k, v in loaded["error"].items()}
    return {}


def refuse_newer(db_path: Path) -> RefusalResult:
    make_newer_database(db_path)
    before = db_path.read_bytes()
    env = cli_env(db_path)
    served = subprocess.run([sys.executable, "-m", "baton", "serve", "--db", str(db_path)], env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    cli = subprocess.run([sys.executable, "-m", "baton", "list-sessions"], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    return RefusalResult(served.returncode, _error_of(served.stderr), cli.returncode, _error_of(cli.stderr),
                         db_path.read_bytes() == before)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.coldstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=8)
    parser.add_argument("--clis", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="run each race this many times")
    args = parser.parse_args(argv)
    ok = True
    for _ in range(args.repeat):
        for scenario in ("missing", "upgrade"):
            with tempfile.TemporaryDirectory(prefix="baton-cold-") as tmp:
                db_path = Path(tmp) / "baton.db"
                if scenario == "upgrade":
                    make_old_database(db_path)
                result = anyio.run(race, db_path, scenario, args.servers, args.clis)
            print(result.line(), flush=True)
            for error in result.errors[:5]:
                print(f"  error: {error}")
            ok = ok and result.ok
    with tempfile.TemporaryDirectory(prefix="baton-cold-") as tmp:
        refusal = refuse_newer(Path(tmp) / "baton.db")
    print(refusal.line())
    return 0 if ok and refusal.ok else 1


if __name__ == "__main__":
    sys.exit(main())
