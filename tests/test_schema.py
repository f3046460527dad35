"""Schema and migrations: fresh equals migrated, failures roll back, newer databases are left alone,
cold starts race safely, backups are taken, and CHECK constraints really reject bad values."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baton.errors import SchemaTooNew, StorageError
from baton.migrations import Migration, latest_version, load_migrations, migrate
from baton.store import Store
from tests.helpers import cli_env, run_cli

NOW = "2026-01-01T00:00:00.000Z"


def _schema(path: Path) -> list[tuple[str, str, str, str | None]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name").fetchall()
    conn.close()
    return rows


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _insert_session(path: Path, session_id: str) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("INSERT INTO sessions (session_id, requirements, created_at, updated_at)"
                         " VALUES (?, 'r', ?, ?)", (session_id, NOW, NOW))
            conn.execute("INSERT INTO logs (session_id, log_type, agent_type, content, timestamp)"
                         " VALUES (?, 'interaction', 'developer', 'hello', ?)", (session_id, NOW))
    finally:
        conn.close()


def _backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".v*.bak"))


def test_migrations_are_numbered_without_gaps() -> None:
    """The shipped migrations are 0001.. in order and the latest version is their count."""
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "0001_core.sql" and latest_version() == len(migrations)


def test_fresh_schema_equals_schema_migrated_step_by_step_with_data(tmp_path: Path) -> None:
    """Migrating in one go and one version at a time, with data in between, gives identical schemas."""
    migrations = load_migrations()
    fresh, stepped = tmp_path / "fresh.db", tmp_path / "stepped.db"
    assert migrate(fresh) == len(migrations)
    for step in range(1, len(migrations) + 1):
        assert migrate(stepped, migrations[:step]) == step
        _insert_session(stepped, f"s{step}")
    assert _schema(stepped) == _schema(fresh)
    assert _user_version(stepped) == _user_version(fresh) == len(migrations)
    conn = sqlite3.connect(stepped)
    try:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == len(migrations)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_migrating_an_up_to_date_database_changes_nothing(tmp_path: Path) -> None:
    """A second migrate is a no-op: same version, no backup, same bytes."""
    db = tmp_path / "b.db"
    migrate(db)
    _insert_session(db, "s")
    _checkpoint(db)
    before = db.read_bytes()
    assert migrate(db) == latest_version()
    assert db.read_bytes() == before and _backups(db) == []


def test_failed_migration_rolls_back_and_keeps_the_previous_version(tmp_path: Path) -> None:
    """A migration that fails half-way leaves no trace of its statements and the previous user_version."""
    db = tmp_path / "b.db"
    migrations = load_migrations()
    migrate(db)
    _insert_session(db, "s")
    schema_before = _schema(db)
    broken = Migration(len(migrations) + 1, "9999_broken.sql",
                       "CREATE TABLE half_done (x INTEGER);\nINSERT INTO half_done VALUES (1);\n"
                       "ALTER TABLE sessions ADD COLUMN extra TEXT;\nINSERT INTO no_such_table VALUES (1);")
    with pytest.raises(StorageError, match=r"9999_broken\.sql failed and was rolled back"):
        migrate(db, [*migrations, broken])
    assert _user_version(db) == len(migrations) and _schema(db) == schema_before
    # The store still opens it, and the data is intact.
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT session_id FROM sessions").fetchall() == [("s",)]
    finally:
        conn.close()


def test_a_failure_part_way_through_a_run_keeps_the_migrations_before_it(tmp_path: Path) -> None:
    """On a fresh database, the migrations before the broken one stay applied; the broken one leaves nothing."""
    db = tmp_path / "b.db"
    first = load_migrations()[0]
    broken = Migration(2, "0002_broken.sql", "CREATE TABLE t2 (x INTEGER);\nSELECT * FROM missing;")
    with pytest.raises(StorageError):
        migrate(db, [first, broken])
    assert _user_version(db) == 1
    assert "t2" not in {name for _, name, _, _ in _schema(db)}
    assert migrate(db, [first]) == 1


def _checkpoint(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()


@pytest.fixture(params=["delete", "wal"])
def newer_db(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, bytes]]:
    """A database stamped with a future schema version, in rollback-journal or (checkpointed) WAL mode."""
    db = tmp_path / "newer.db"
    migrate(db)
    _insert_session(db, "s")
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {latest_version() + 5}")
    conn.close()
    _checkpoint(db)
    if request.param == "wal":
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.close()
    yield db, db.read_bytes()


async def test_newer_database_is_refused_and_left_untouched(newer_db: tuple[Path, bytes]) -> None:
    """A database from a newer Baton is refused with schema_too_new and its bytes are unchanged."""
    db, before = newer_db
    with pytest.raises(SchemaTooNew, match="upgrade Baton"):
        await Store.open(db)
    assert db.read_bytes() == before and _backups(db) == []
    assert _user_version(db) == latest_version() + 5


def test_cli_on_a_newer_database_exits_with_schema_too_new(newer_db: tuple[Path, bytes]) -> None:
    """The CLI reports schema_too_new as error JSON on stderr (exit 1) and leaves the file as it was."""
    db, before = newer_db
    proc = run_cli(db, "get-session", "--session-id", "s")
    assert proc.returncode == 1 and proc.stdout == ""
    assert json.loads(proc.stderr)["error"]["code"] == "schema_too_new"
    assert db.read_bytes() == before


def test_a_non_empty_database_is_backed_up_before_migrating(tmp_path: Path) -> None:
    """Migrating a database with data first copies it, at its old version and with its rows, next to it."""
    db = tmp_path / "b.db"
    migrations = load_migrations()
    migrate(db, migrations[:1])
    assert _backups(db) == [], "a fresh database has nothing to back up"
    _insert_session(db, "kept")
    migrate(db)
    (backup,) = _backups(db)
    assert backup.name.startswith("b.db.v1-")
    assert _user_version(backup) == 1
    conn = sqlite3.connect(backup)
    try:
        assert conn.execute("SELECT session_id FROM sessions").fetchall() == [("kept",)]
        assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'context_packages'").fetchone()[0] == 0
    finally:
        conn.close()


_COLD_START = """
import logging, sys
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(message)s")
from baton.cli import main
try:  # a write: a read-only command does not create a missing database
    main(["create-session", "--db", sys.argv[1], "--requirements", "cold start"])
except SystemExit as exit:
    if exit.code:
        raise
main(["health", "--db", sys.argv[1]])
"""


def test_concurrent_cold_starts_migrate_once_and_all_succeed(tmp_path: Path) -> None:
    """Several processes started at once on a missing database: each migration is applied exactly once."""
    db = tmp_path / "baton.db"
    procs = [subprocess.Popen([sys.executable, "-c", _COLD_START, str(db)], env=cli_env(db), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(5)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 5, [err for _, err in outputs]
    applied = [line for _, err in outputs for line in err.splitlines() if "applied migration" in line]
    assert sorted(applied) == sorted(f"baton.migrations: applied migration {m.name}" for m in load_migrations())
    healths = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    assert {h["schema_version"] for h in healths} == {latest_version()}
    assert {h["db_path"] for h in healths} == {str(db)}
    assert _backups(db) == []


@pytest.fixture(scope="module")
def raw_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("raw") / "raw.db"
    migrate(db)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO sessions (session_id, requirements, created_at, updated_at) VALUES ('s', 'r', ?, ?)",
                     (NOW, NOW))
    conn.close()
    return db


_VALID: dict[str, dict[str, Any]] = {
    "sessions": {"session_id": "s2", "requirements": "r", "created_at": NOW, "updated_at": NOW},
    "logs": {"session_id": "s", "log_type": "interaction", "agent_type": "developer", "content": "c",
             "timestamp": NOW},
    "task_groups": {"session_id": "s", "group_id": "A", "name": "n", "created_at": NOW, "updated_at": NOW},
    "success_criteria": {"session_id": "s", "criterion": "c", "created_at": NOW, "updated_at": NOW},
    "state_snapshots": {"session_id": "s", "state_type": "pm", "version": 1, "state": "{}", "saved_at": NOW},
    "token_usage": {"session_id": "s", "agent_type": "developer", "input_tokens": 1, "timestamp": NOW},
}

BAD_VALUES: list[tuple[str, dict[str, Any]]] = [
    ("sessions", {"mode": "serial"}),
    ("sessions", {"status": "done"}),
    ("sessions", {"requirements": ""}),
    ("sessions", {"metadata": "[1]"}),
    ("sessions", {"metadata": "not json"}),
    ("logs", {"log_type": "chat"}),
    ("logs", {"log_type": "reasoning", "phase": "thinking"}),
    ("logs", {"log_type": "reasoning"}),
    ("logs", {"confidence": "certain"}),
    ("logs", {"iteration": -1}),
    ("logs", {"redacted": 2}),
    ("logs", {"refs": "{}"}),
    ("logs", {"log_type": "event", "content": None}),
    ("logs", {"content": None}),
    ("logs", {"session_id": "ghost"}),
    ("task_groups", {"status": "done"}),
    ("task_groups", {"complexity": 11}),
    ("task_groups", {"initial_tier": "tech_lead"}),
    ("task_groups", {"review_status": "lgtm"}),
    ("task_groups", {"merge_status": "done"}),
    ("task_groups", {"qa_attempts": -1}),
    ("task_groups", {"blocking_issues_count": -1}),
    ("task_groups", {"security_sensitive": 5}),
    ("task_groups", {"specializations": "{}"}),
    ("task_groups", {"complexity": "high"}),
    ("success_criteria", {"status": "done"}),
    ("success_criteria", {"required_for_completion": 3}),
    ("state_snapshots", {"state_type": "developer"}),
    ("state_snapshots", {"version": 0}),
    ("state_snapshots", {"state": "[]"}),
    ("token_usage", {"input_tokens": -1}),
    ("token_usage", {"cache_write_tokens": -1}),
    ("token_usage", {"input_tokens": "many"}),
]


@pytest.mark.parametrize(("table", "bad"), BAD_VALUES, ids=[f"{t}-{next(iter(b))}" for t, b in BAD_VALUES])
def test_check_constraints_reject_bad_values(raw_db: Path, table: str, bad: dict[str, Any]) -> None:
    """Raw SQL inserts of out-of-enum, negative, non-JSON or wrongly typed values fail in the database itself."""
    conn = sqlite3.connect(raw_db, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    try:
        valid = _VALID[table]
        _insert(conn, table, valid)  # the base row is acceptable, so the failure below is the bad value's
        with pytest.raises(sqlite3.IntegrityError):
            _insert(conn, table, {**valid, **bad})
    finally:
        conn.close()


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    conn.execute("BEGIN")
    try:
        conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                     tuple(row.values()))
    finally:
        conn.execute("ROLLBACK")
