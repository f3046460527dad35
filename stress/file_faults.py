"""Files pulled from under a running server, and files that are not Baton's.

    python -m stress.file_faults        # every scenario once; exit 1 if any fails

Each scenario runs a real `baton serve` driven over stdio, acknowledges some writes, does something
to the files at the database path, then writes on:

- delete-db: `rm` the database file.
- replace-db: `mv` another Baton database over it.
- delete-wal-then-kill: `rm` its -wal, then SIGKILL the server after the writes that follow.
- delete-wal-idle-then-kill: `rm` its -wal and make no call: the server must notice by itself
  (its stderr says so within RESCUE_WAIT_S) before the SIGKILL, or every acknowledged write still in
  the deleted -wal dies with the process.
- replace-db-idle-then-open: `mv` another Baton database over it and make no call; once the server
  said so on stderr, another process opens the file now at the path. It must see none of this
  server's writes (left in the -wal at the path, they would be read into that file), and the
  server's next calls are refused.
- cli-alongside: no fault; CLI commands (a write, backup, restore --force, vacuum, check) open and
  close the database between the server's writes. Nothing may be refused here.

Afterwards every write acknowledged before the fault is in the file that keeps this server's data
(the one at the path, or the `.rescued-*` copy when the file itself went), no write after it was
acknowledged (each is `storage`), and the file now at the path holds none of them.

Foreign files (`foreign`): another application's SQLite file at the path is refused by `baton
serve` and by a CLI command with `storage`, and left byte for byte, mtime and journal mode as it was,
with nothing created beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from mcp.client import Client
from mcp.types import CallToolResult

from stress.harness import SESSION_ID, kill, prepare_database, run_cli, serve, server_pid

CALL_TIMEOUT_S = 60.0
RESCUE_WAIT_S = 10.0  # the server checks its files every 0.5 s; generous for a loaded machine
RESCUED = "refuses every read and write"  # in the line the server logs once it rescued its data


@dataclass
class FaultRun:
    scenario: str
    acked_before: list[str] = field(default_factory=list)
    acked_after: list[str] = field(default_factory=list)
    refused_after: dict[str, str] = field(default_factory=dict)  # marker -> error text
    read_after: str = ""  # what a read after the fault answered (an error text, or "ok")
    kept_in: str = ""  # the file that should hold what the server acknowledged
    kept: set[str] = field(default_factory=set)
    at_path: set[str] | None = None  # markers in the file at the path afterwards; None when there is none
    integrity: str = ""
    files: list[str] = field(default_factory=list)
    cli_failures: list[str] = field(default_factory=list)
    rescue_logged: str = ""  # the server's stderr line saying it noticed, for the idle scenarios
    seen_by_other: set[str] | None = None  # markers another process read from the file at the path

    @property
    def faulty(self) -> bool:
        return self.scenario != "cli-alongside"

    @property
    def idle(self) -> bool:
        """No call between the fault and what follows it: the server has to notice by itself."""
        return "-idle-" in self.scenario

    @property
    def calls_after(self) -> bool:
        """Whether the scenario calls the server after the fault (and then expects each call refused)."""
        return self.scenario != "delete-wal-idle-then-kill"

    @property
    def lost(self) -> set[str]:
        """Acknowledged writes missing from the file that keeps the server's data."""
        acked = set(self.acked_before) if self.faulty else {*self.acked_before, *self.acked_after}
        return acked - self.kept

    @property
    def ok(self) -> bool:
        refused_ok = (all(text.startswith("Error executing tool log-interaction: storage: ")
                          for text in self.refused_after.values()) and not self.acked_after
                      and (self.read_after.startswith("Error executing tool get-logs: storage: ")
                           or not self.calls_after)
                      if self.faulty else not self.refused_after and self.read_after == "ok")
        leaked = set(self.refused_after) & (self.kept | (self.at_path or set()))
        if self.idle:
            refused_ok = refused_ok and bool(self.rescue_logged) and self.seen_by_other in (None, set())
        return refused_ok and not self.lost and not leaked and self.integrity == "ok" and not self.cli_failures

    def line(self) -> str:
        noticed = (f"; noticed without a call: {'yes' if self.rescue_logged else 'NO'}" if self.idle else "")
        other = ("" if self.seen_by_other is None
                 else f"; its writes seen by another process at the path: {len(self.seen_by_other)}")
        return (f"{self.scenario}: {len(self.acked_before)} writes acknowledged before, {len(self.acked_after)} "
                f"after, {len(self.refused_after)} refused; acknowledged writes missing from {self.kept_in or '?'}: "
                f"{len(self.lost)}; integrity {self.integrity or '?'}{noticed}{other}; "
                f"{'ok' if self.ok else 'FAILED'}")


def markers_in(db_path: Path) -> tuple[set[str], str]:
    """The interaction markers in a database file, and its integrity_check verdict."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        found = {row[0] for row in conn.execute(
            "SELECT content FROM logs WHERE session_id = ? AND log_type = 'interaction'", (SESSION_ID,))}
        return found, str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def _write(client: Client, marker: str) -> str | None:
    """One write; None when it was acknowledged, else the error text."""
    with anyio.fail_after(CALL_TIMEOUT_S):
        result = await client.call_tool(
            "log-interaction", {"session_id": SESSION_ID, "agent_type": "developer", "content": marker})
    return _text(result) if result.is_error else None


async def wait_for_line(log: Path, text: str, within: float = RESCUE_WAIT_S) -> str:
    """The first line of `log` (a server's stderr) containing `text`, waiting up to `within` s; "" if none."""
    with anyio.move_on_after(within):
        while True:
            lines = (await anyio.Path(log).read_text(errors="replace")).splitlines()
            found = next((line for line in lines if text in line), "")
            if found:
                return found
            await anyio.sleep(0.05)
    return ""


def _delete_wal(db: Path) -> None:
    db.with_name(db.name + "-wal").unlink()


def _replace_db(db: Path) -> None:
    os.replace(db.with_name("other.db"), db)


FAULTS: dict[str, Callable[[Path], None]] = {
    "delete-db": lambda db: db.unlink(),
    "replace-db": _replace_db,
    "delete-wal-then-kill": _delete_wal,
    "delete-wal-idle-then-kill": _delete_wal,
    "replace-db-idle-then-open": _replace_db,
}


async def _cli_alongside(db_path: Path, run: FaultRun) -> None:
    backup = db_path.with_name("alongside-backup.db")
    commands = [
        ["log-interaction", "--json", json.dumps({"session_id": SESSION_ID, "agent_type": "qa_expert",
                                                  "content": "cli-write"})],
        ["backup", "--to", str(backup)], ["restore", "--force", str(backup)], ["vacuum"], ["check"],
    ]
    for command in commands:
        code, _, err = await run_cli(db_path, *command)
        if code != 0:
            run.cli_failures.append(f"{command[0]}: exit {code}: {err.strip()[-300:]}")


async def run_fault(directory: Path, scenario: str, before: int = 10, after: int = 10) -> FaultRun:
    """One scenario in `directory` (a fresh one per call)."""
    db_path = directory / "baton.db"
    await prepare_database(db_path)
    if scenario.startswith("replace-db"):
        await prepare_database(directory / "other.db")  # the same schema and session, none of the markers
    run = FaultRun(scenario)
    log = directory / "server.log"  # the server's stderr
    with anyio.fail_after(180), log.open("w") as errlog:
        try:
            async with serve(db_path, errlog) as client:
                pid = await server_pid(client)
                for n in range(before):
                    if await _write(client, f"before-{n}") is None:
                        run.acked_before.append(f"before-{n}")
                if scenario == "cli-alongside":
                    await _cli_alongside(db_path, run)
                else:
                    FAULTS[scenario](db_path)
                if run.idle:
                    run.rescue_logged = await wait_for_line(log, RESCUED)
                if scenario == "replace-db-idle-then-open":
                    run.seen_by_other = markers_in(db_path)[0]  # another process, while the server runs
                for n in range(after if run.calls_after else 0):
                    error = await _write(client, f"after-{n}")
                    if error is None:
                        run.acked_after.append(f"after-{n}")
                    else:
                        run.refused_after[f"after-{n}"] = error
                if run.calls_after:
                    read = await client.call_tool("get-logs", {"session_id": SESSION_ID, "limit": 1})
                    run.read_after = _text(read) if read.is_error else "ok"
                if scenario.endswith("-then-kill"):
                    kill(pid)
        except Exception:
            if not scenario.endswith("-then-kill"):  # the connection dies with a killed server, and only then
                raise
    return _inspect(directory, run)


def _inspect(directory: Path, run: FaultRun) -> FaultRun:
    """What the files hold once the server is gone."""
    db_path = directory / "baton.db"
    rescued = sorted(directory.glob("baton.db.rescued-*"))
    keeper = rescued[0] if rescued and "-db" in run.scenario else db_path
    if keeper.exists():
        run.kept_in = keeper.name
        run.kept, run.integrity = markers_in(keeper)
    if db_path.exists():
        run.at_path = markers_in(db_path)[0]
    run.files = sorted(p.name for p in directory.iterdir())
    return run


# -- another application's file -------------------------------------------------------------------

FOREIGN: dict[str, tuple[int, str]] = {
    "other tables, user_version 0": (0, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT);"
                                        "INSERT INTO accounts (name) VALUES ('alice');"),
    "other tables, user_version 3": (3, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT);"
                                        "CREATE INDEX accounts_name ON accounts (name);"),
    "its own sessions table": (0, "CREATE TABLE sessions (id INTEGER PRIMARY KEY, user TEXT, started REAL);"
                                  "INSERT INTO sessions (user, started) VALUES ('bob', 1.5);"),
}


def make_foreign(db_path: Path, kind: str) -> None:
    """Another application's database in rollback-journal mode, as most applications leave theirs."""
    version, sql = FOREIGN[kind]
    conn = sqlite3.connect(db_path)
    try:
        conn.executescript(f"BEGIN; {sql} PRAGMA user_version = {version}; COMMIT;")
    finally:
        conn.close()


@dataclass
class ForeignRun:
    kind: str
    exits: dict[str, int]
    errors: dict[str, dict[str, str]]
    unchanged: bool  # bytes and mtime
    header_journal: bytes  # file-format bytes 18-19: 1,1 rollback journal, 2,2 WAL
    files: list[str]

    @property
    def ok(self) -> bool:
        return (all(code == 1 for code in self.exits.values()) and self.unchanged
                and self.header_journal == b"\x01\x01" and self.files == ["baton.db"]
                and all(e.get("code") == "storage" and "not a Baton database" in e.get("message", "")
                        for e in self.errors.values()))


def _stderr_error(stderr: str) -> dict[str, str]:
    for line in reversed(stderr.strip().splitlines()):
        try:
            loaded = json.loads(line)
        except ValueError:
            continue
        if isinstance(loaded, dict) and isinstance(loaded.get("error"), dict):
            return {str(k): str(v) for k, v in loaded["error"].items()}
    return {}


def run_foreign(directory: Path, kind: str) -> ForeignRun:
    db_path = directory / "baton.db"
    make_foreign(db_path, kind)
    before, mtime = db_path.read_bytes(), db_path.stat().st_mtime_ns
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")} | {"BATON_DB": str(db_path)}
    commands = {"serve": ["serve", "--db", str(db_path)],
                "cli write": ["create-session", "--session-id", "s1", "--requirements", "r"]}
    exits, errors = {}, {}
    for name, args in commands.items():
        proc = subprocess.run([sys.executable, "-m", "baton", *args], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, check=False)
        exits[name], errors[name] = proc.returncode, _stderr_error(proc.stderr)
    data = db_path.read_bytes()
    return ForeignRun(kind, exits, errors, data == before and db_path.stat().st_mtime_ns == mtime, data[18:20],
                      sorted(p.name for p in directory.iterdir()))


def main() -> int:
    failed = 0
    with tempfile.TemporaryDirectory(prefix="baton-file-faults-") as tmp:
        for scenario in [*FAULTS, "cli-alongside"]:
            directory = Path(tmp) / scenario
            directory.mkdir()
            run = anyio.run(run_fault, directory, scenario)
            print(run.line(), flush=True)
            if not run.ok:
                print("  server stderr:", *(directory / "server.log").read_text().splitlines()[-10:], sep="\n  ")
            failed += not run.ok
        for kind in FOREIGN:
            directory = Path(tmp) / kind.replace(" ", "-").replace(",", "")
            directory.mkdir()
            foreign = run_foreign(directory, kind)
            print(f"foreign ({kind}): exits {foreign.exits}, unchanged {foreign.unchanged}, journal bytes "
                  f"{tuple(foreign.header_journal)}, files {foreign.files}; {'ok' if foreign.ok else 'FAILED'}",
                  flush=True)
            failed += not foreign.ok
            shutil.rmtree(directory)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
