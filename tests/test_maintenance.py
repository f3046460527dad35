"""backup / restore / check / prune / vacuum with real files and real processes.

The commands run in-process (same main(), exit codes and output); the writers and the server
they race or are refused by are real processes.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from stress.file_faults import FOREIGN, make_foreign

from baton.maintenance import holders
from baton.migrations import latest_version, load_migrations, migrate
from baton.store import Store
from tests.helpers import call, cli_env, serve_command
from tests.test_transfer_cli import main_json as cli_json
from tests.test_transfer_cli import run_main as run_cli

CLI_WRITER = """
import subprocess, sys
from pathlib import Path
db, ack, sid, tag = sys.argv[1:5]
n = 0
with open(ack, "a") as out:
    while not Path(ack + ".stop").exists():
        p = subprocess.run([sys.executable, "-m", "baton", "log-interaction", "--db", db, "--session-id", sid,
                            "--agent-type", "developer", "--content", f"{tag}-{n}"], capture_output=True, text=True)
        if p.returncode == 0:  # acknowledged: committed
            out.write(__import__("json").loads(p.stdout)["log_id"].__str__() + "\\n")
            out.flush()
        n += 1
"""

FAST_WRITER = """
import sys
from pathlib import Path
import anyio
from baton.store import Store
from baton.tools import catalog

async def main() -> None:
    db, ack, sid, tag = sys.argv[1:5]
    op = catalog()["log-interaction"]
    async with await Store.open(Path(db)) as store:
        with open(ack, "a") as out:
            n = 0
            while not Path(ack + ".stop").exists():
                result = await op.run(store, {"session_id": sid, "agent_type": "qa_expert", "content": f"{tag}-{n}"})
                out.write(f"{result.log_id}\\n")  # written only after the commit returned
                out.flush()
                n += 1

anyio.run(main)
"""


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def acked(path: Path) -> set[int]:
    if not path.exists():
        return set()
    return {int(line) for line in path.read_text().split("\n") if line.strip()}


@pytest.fixture
def session_db(db_path: Path) -> Path:
    cli_json(db_path, "create-session", "--session-id", "s1", "--requirements", "burst")
    return db_path


@pytest.mark.slow
def test_backup_during_a_write_burst_holds_every_acknowledged_write(session_db: Path, tmp_path: Path) -> None:
    writers: list[tuple[subprocess.Popen[bytes], Path]] = []
    for i, script in enumerate([CLI_WRITER, CLI_WRITER, FAST_WRITER]):
        ack = tmp_path / f"ack{i}"
        with (tmp_path / f"writer{i}.err").open("wb") as err:
            proc = subprocess.Popen([sys.executable, "-c", script, str(session_db), str(ack), "s1", f"w{i}"],
                                    env=cli_env(session_db), stdout=subprocess.DEVNULL, stderr=err)
        writers.append((proc, ack))
    try:
        wait_for(lambda: all(len(acked(ack)) >= (30 if i == 2 else 2) for i, (_, ack) in enumerate(writers)),
                 what="every writer to have written")
        before = set().union(*(acked(ack) for _, ack in writers))
        backup_path = tmp_path / "backups" / "b.db"
        result = cli_json(session_db, "backup", "--to", str(backup_path))
        after_backup = set().union(*(acked(ack) for _, ack in writers))
        assert after_backup > before  # the writers really kept writing around the backup
    finally:
        for _, ack in writers:
            Path(f"{ack}.stop").touch()
        for proc, _ in writers:
            proc.wait(timeout=30)
    for i, (proc, _) in enumerate(writers):
        assert proc.returncode == 0, (tmp_path / f"writer{i}.err").read_text()
    assert result["quick_check"] == "ok" and Path(result["backup"]) == backup_path
    assert not Path(f"{backup_path}-wal").exists()  # one self-contained file
    checked = cli_json(backup_path, "check")
    assert checked["ok"] is True and checked["integrity_check"] == ["ok"]
    restored = tmp_path / "restored.db"
    out = cli_json(restored, "restore", str(backup_path))
    assert out["replaced_file_kept_at"] is None
    assert cli_json(restored, "check")["ok"] is True
    conn = sqlite3.connect(restored)
    ids = {r[0] for r in conn.execute("SELECT log_id FROM logs WHERE session_id = 's1'")}
    conn.close()
    assert before <= ids, f"acknowledged writes missing from the backup: {sorted(before - ids)[:10]}"
    assert len(ids) == result["counts"]["logs"]


@pytest.fixture
def server(session_db: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(serve_command(session_db), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=cli_env(session_db))
    try:
        # Ready means the store's own WAL connection is open, not merely the file (migrations open
        # and close it first, and between the two the -shm file can vanish).
        def store_open() -> bool:
            held = holders(session_db)
            return held["shm_lock"] == "held" and proc.pid in [p["pid"] for p in held["pids"]]
        wait_for(store_open, what="the server to open its store")
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_restore_refuses_while_a_server_holds_the_database(session_db: Path, tmp_path: Path,
                                                           server: subprocess.Popen[bytes]) -> None:
    backup_path = tmp_path / "b.db"
    cli_json(session_db, "backup", "--to", str(backup_path))
    cli_json(session_db, "create-session", "--session-id", "after-backup", "--requirements", "later")
    held = holders(session_db)
    assert held["shm_lock"] == "held"
    assert server.pid in [p["pid"] for p in held["pids"]]
    refused = run_cli(session_db, "restore", str(backup_path))
    assert refused.returncode == 4, refused.stderr
    error = json.loads(refused.stderr)["error"]
    assert error["code"] == "conflict" and f"pid {server.pid}" in error["message"]
    assert cli_json(session_db, "get-session", "--session-id", "after-backup")["session_id"] == "after-backup"
    forced = cli_json(session_db, "restore", str(backup_path), "--force")
    assert forced["forced_while_held"] is True
    kept = Path(forced["replaced_file_kept_at"])
    assert kept.exists()
    assert run_cli(session_db, "get-session", "--session-id", "after-backup").returncode == 3
    conn = sqlite3.connect(kept)  # the replaced database is kept whole
    assert conn.execute("SELECT count(*) FROM sessions WHERE session_id = 'after-backup'").fetchone()[0] == 1
    conn.close()


def test_holders_is_free_without_connections(session_db: Path) -> None:
    held = holders(session_db)
    assert held["held"] is False and held["pids"] == []


def test_restore_keeps_replaced_file_and_rejects_garbage(session_db: Path, tmp_path: Path) -> None:
    backup_path = tmp_path / "b.db"
    cli_json(session_db, "backup", "--to", str(backup_path))
    cli_json(session_db, "create-session", "--session-id", "s2", "--requirements", "later")
    result = cli_json(session_db, "restore", str(backup_path))
    assert Path(result["replaced_file_kept_at"]).exists()
    assert [s["session_id"] for s in cli_json(session_db, "list-sessions")["items"]] == ["s1"]
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    proc = run_cli(session_db, "restore", str(garbage))
    assert proc.returncode != 0
    assert [s["session_id"] for s in cli_json(session_db, "list-sessions")["items"]] == ["s1"]
    exists = run_cli(session_db, "backup", "--to", str(backup_path))
    assert exists.returncode == 4  # a backup never overwrites


def test_check_reports_problems(session_db: Path, tmp_path: Path) -> None:
    ok = cli_json(session_db, "check")
    assert ok["ok"] is True and ok["schema_version"] == ok["latest_schema_version"]
    assert ok["counts"]["sessions"] == 1 and ok["db_bytes"] > 0
    broken = tmp_path / "fk.db"
    cli_json(broken, "create-session", "--session-id", "x", "--requirements", "r")
    conn = sqlite3.connect(broken)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("INSERT INTO logs (session_id, log_type, agent_type, content, timestamp)"
                 " VALUES ('ghost', 'interaction', 'developer', 'x', '2026-01-01T00:00:00.000Z')")
    conn.commit()
    conn.close()
    proc = run_cli(broken, "check")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["foreign_key_violations"][0]["table"] == "logs"
    assert run_cli(tmp_path / "missing.db", "check").returncode == 3


async def test_prune_is_a_dry_run_unless_yes(store: Store, db_path: Path) -> None:
    for sid, project in (("old", "p1"), ("old2", "p2"), ("running", "p1"), ("new", "p1"), ("late", "p1")):
        await call(store, "create-session", session_id=sid, requirements="r", project=project)
        await call(store, "log-interaction", session_id=sid, agent_type="developer", content="hello")
    for sid in ("old", "old2", "new", "late"):
        await call(store, "update-session-status", session_id=sid, status="completed", force=True, reason="test")
    async with store.write() as conn:
        await conn.execute("UPDATE sessions SET ended_at = '2020-01-01T00:00:00.000Z',"
                           " updated_at = '2020-01-01T00:00:00.000Z'"
                           " WHERE session_id IN ('old', 'old2', 'running', 'late')")
        await conn.execute("UPDATE logs SET timestamp = '2020-01-01T00:00:00.000Z'"
                           " WHERE session_id IN ('old', 'old2', 'running', 'late')")
    # 'late' ended long ago but was written to today: its logs are not old.
    await call(store, "log-interaction", session_id="late", agent_type="developer", content="written after the end")
    dry = cli_json(db_path, "prune", "--older-than", "90d", "--project", "p1")
    assert dry["dry_run"] is True and [s["session_id"] for s in dry["sessions"]] == ["old"]
    assert dry["logs"] == 1 and dry["kept"] == [{"session_id": "running", "status": "active", "reason": "not finished"}]
    assert len((await call(store, "get-logs", session_id="old"))["items"]) == 1
    done = cli_json(db_path, "prune", "--older-than", "90d", "--yes")
    assert {s["session_id"] for s in done["sessions"]} == {"old", "old2"} and done["dry_run"] is False
    assert (await call(store, "get-logs", session_id="old"))["items"] == []
    assert len((await call(store, "get-logs", session_id="new"))["items"]) == 1
    assert len((await call(store, "get-logs", session_id="running"))["items"]) == 1
    assert len((await call(store, "get-logs", session_id="late"))["items"]) == 2
    assert (await call(store, "get-session", session_id="old"))["status"] == "completed"
    assert run_cli(db_path, "prune", "--older-than", "soon").returncode == 2


def test_vacuum_reclaims_space(db_path: Path) -> None:
    cli_json(db_path, "create-session", "--session-id", "v", "--requirements", "r")
    conn = sqlite3.connect(db_path)
    conn.executemany("INSERT INTO logs (session_id, log_type, agent_type, content, content_length, timestamp)"
                     " VALUES ('v', 'interaction', 'developer', ?, 0, '2026-01-01T00:00:00.000Z')",
                     [("x" * 4000,) for _ in range(300)])
    conn.commit()
    conn.execute("DELETE FROM logs")
    conn.commit()
    conn.close()
    result = cli_json(db_path, "vacuum")
    assert result["reclaimed_bytes"] > 500_000
    assert cli_json(db_path, "check")["ok"] is True


# -- another application's SQLite file ----------------------------------------------------------------


@pytest.mark.parametrize("kind", [*FOREIGN, "sessions table, user_version 99"])
def test_check_of_another_applications_database_says_it_is_not_batons(tmp_path: Path, kind: str) -> None:
    """`baton check` on another application's SQLite file exits 1, its first problem that the file is not a
    Baton database (it said ok, and that the next server start would migrate it), and changes nothing."""
    db = tmp_path / "other.db"
    if kind in FOREIGN:
        make_foreign(db, kind)
    else:
        conn = sqlite3.connect(db)
        conn.executescript("CREATE TABLE sessions (id INTEGER PRIMARY KEY); PRAGMA user_version = 99;")
        conn.close()
    before = db.read_bytes()
    proc = run_cli(db, "check")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    assert report["problems"][0].startswith(f"{db} is not a Baton database: "), report["problems"]
    assert not any("newer" in p for p in report["problems"]) and report["notes"] == []
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_restore_refuses_a_file_that_is_not_a_baton_backup(session_db: Path, tmp_path: Path) -> None:
    """A file with a `sessions` table of its own and user_version 1 is refused as not Baton's before anything
    is changed (a sessions table was enough: it replaced the database, then the migration refused it)."""
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.executescript("CREATE TABLE sessions (id INTEGER PRIMARY KEY, user TEXT); PRAGMA user_version = 1;")
    conn.close()
    before = session_db.read_bytes()
    proc = run_cli(session_db, "restore", str(other))
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stderr)["error"]
    assert error["message"].startswith(f"{other} is not a Baton backup: user_version 1, but its tables"), error
    assert "nothing was changed" in error["message"]
    assert session_db.read_bytes() == before
    assert not list(tmp_path.glob("*.replaced-*"))
    assert [s["session_id"] for s in cli_json(session_db, "list-sessions")["items"]] == ["s1"]


def test_restore_of_a_backup_with_an_older_schema_migrates_it(session_db: Path, tmp_path: Path) -> None:
    """A Baton database at schema v3 is recognised as Baton's by the tables v3 has, restored, and migrated."""
    old = tmp_path / "v3.db"
    migrate(old, load_migrations()[:3])
    result = cli_json(session_db, "restore", str(old))
    assert (result["backup_schema_version"], result["schema_version"]) == (3, latest_version())
    assert cli_json(session_db, "list-sessions")["items"] == []
