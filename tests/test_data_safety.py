"""Data safety at the edges: the database or its -wal pulled from under a running server, another
application's SQLite file at the path, and times outside the calendar."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest
from stress.file_faults import FOREIGN, RESCUE_WAIT_S, run_fault, run_foreign

from baton.errors import StorageError
from baton.migrations import created_tables, database_tables, latest_version, load_migrations, migrate
from baton.store import Store
from tests.core_helpers import (  # noqa: F401 (the *_fixture names: stores start from a migrated copy)
    MODES,
    Mode,
    connected,
    copied_store_fixture,
    error_code,
    migrated_template_fixture,
    result_text,
)
from tests.helpers import run_cli

STORAGE = "Error executing tool log-interaction: storage: "

# -- files pulled from under a running server ------------------------------------------------------


@pytest.mark.slow
async def test_writes_after_the_database_file_is_deleted_are_refused_and_what_was_acknowledged_is_kept(
        tmp_path: Path) -> None:
    """`rm` of the database under `baton serve`: every later write and read is `storage` saying so; the
    writes acknowledged before are in the rescued copy, nothing is recreated at the path."""
    run = await run_fault(tmp_path, "delete-db")
    db_path = tmp_path / "baton.db"
    assert len(run.acked_before) == 10 and run.acked_after == [], run.refused_after
    assert len(run.refused_after) == 10
    for text in [*run.refused_after.values(), run.read_after.replace("get-logs", "log-interaction")]:
        assert text.startswith(f"{STORAGE}{db_path} was deleted while this server had it open"), text
        assert "refuses every read and write" in text and "start it again" in text
    assert run.kept_in.startswith("baton.db.rescued-") and run.kept_in in run.refused_after["after-0"]
    assert run.kept == set(run.acked_before) and run.integrity == "ok"
    assert run.at_path is None, "a database was recreated at the deleted path"
    assert run.ok


@pytest.mark.slow
async def test_writes_after_another_file_is_moved_over_the_database_are_refused(tmp_path: Path) -> None:
    """`mv other.db baton.db` under `baton serve`: writes are `storage` saying the file was replaced; the
    file now at the path gets none of them; what was acknowledged before is in the rescued copy."""
    run = await run_fault(tmp_path, "replace-db")
    db_path = tmp_path / "baton.db"
    assert len(run.acked_before) == 10 and run.acked_after == [] and len(run.refused_after) == 10
    for text in run.refused_after.values():
        assert text.startswith(f"{STORAGE}{db_path} was replaced by another file while this server had it open")
    assert run.at_path == set(), "the file moved over the database received this server's writes"
    assert run.kept == set(run.acked_before) and run.integrity == "ok"
    assert run.ok


@pytest.mark.slow
async def test_deleting_the_wal_then_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """`rm baton.db-wal`, writes, SIGKILL: every write acknowledged before the deletion is in the database
    after reopening, every write after it was refused with `storage`."""
    run = await run_fault(tmp_path, "delete-wal-then-kill", before=20, after=20)
    db_path = tmp_path / "baton.db"
    assert len(run.acked_before) == 20 and run.acked_after == [] and len(run.refused_after) == 20
    for text in run.refused_after.values():
        assert text.startswith(f"{STORAGE}{db_path}-wal was deleted while this server had the database open")
        assert "checkpointed into" in text and "restart the server" in text
    assert run.kept_in == "baton.db" and run.kept == set(run.acked_before) and run.integrity == "ok"
    assert run.ok


@pytest.mark.slow
async def test_a_wal_deleted_between_calls_is_checkpointed_before_a_sigkill(tmp_path: Path) -> None:
    """`rm baton.db-wal` and no call after it: the server notices by itself and says so on stderr, having
    checkpointed; a SIGKILL then loses none of the acknowledged writes."""
    run = await run_fault(tmp_path, "delete-wal-idle-then-kill", before=20)
    db_path = tmp_path / "baton.db"
    assert run.rescue_logged, f"the server said nothing within {RESCUE_WAIT_S:.0f} s of the -wal's deletion"
    assert f"{db_path}-wal was deleted while this server had the database open" in run.rescue_logged
    assert "checkpointed into" in run.rescue_logged and " ERROR " in run.rescue_logged
    assert len(run.acked_before) == 20
    assert run.kept_in == "baton.db" and run.kept == set(run.acked_before) and run.integrity == "ok"
    assert run.ok


@pytest.mark.slow
async def test_a_file_moved_over_the_database_between_calls_does_not_get_the_servers_writes(
        tmp_path: Path) -> None:
    """`mv other.db baton.db` and no call after it: once the server said so, another process opening
    baton.db reads none of the server's writes (left in the -wal at the path, it would); they are in the
    rescued copy, and the server's next calls are `storage`."""
    run = await run_fault(tmp_path, "replace-db-idle-then-open")
    assert run.rescue_logged, f"the server said nothing within {RESCUE_WAIT_S:.0f} s of the replacement"
    assert "was replaced by another file" in run.rescue_logged
    assert run.seen_by_other == set(), "another process read this server's writes into the file moved in"
    assert run.at_path == set() and len(run.refused_after) == 10 and run.acked_after == []
    assert run.kept_in.startswith("baton.db.rescued-") and run.kept == set(run.acked_before)
    assert run.ok


async def test_the_watcher_rescues_a_deleted_wal_and_the_store_refuses_after(tmp_path: Path) -> None:
    """Store.watch_files returns once it noticed the -wal gone; every write and read after is `storage`,
    and what was written before is in the database file."""
    db_path = tmp_path / "baton.db"
    async with await Store.open(db_path) as store:
        async with store.write() as conn:
            await conn.execute("INSERT INTO sessions (session_id, requirements, created_at, updated_at)"
                               " VALUES ('s1', 'r', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')")
        await anyio.Path(f"{db_path}-wal").unlink()
        with anyio.fail_after(10):
            await store.watch_files(interval=0.01)
        with pytest.raises(StorageError, match="-wal was deleted"):
            async with store.write():
                pass
        with pytest.raises(StorageError, match="-wal was deleted"):
            async with store.read():
                pass
    after = sqlite3.connect(db_path)
    assert after.execute("SELECT session_id FROM sessions").fetchall() == [("s1",)]
    after.close()


async def test_the_watcher_keeps_watching_while_the_files_stay(tmp_path: Path) -> None:
    """While nothing happens to the files the watcher runs on (it is cancelled, not finished) and writes
    go through."""
    async with await Store.open(tmp_path / "baton.db") as store:
        with anyio.move_on_after(0.2) as waited:
            await store.watch_files(interval=0.01)
        assert waited.cancelled_caught
        async with store.write() as conn:
            await conn.execute("PRAGMA user_version")


@pytest.mark.slow
async def test_cli_commands_opening_and_closing_the_database_cause_no_false_alarm(tmp_path: Path) -> None:
    """A CLI write, backup, restore --force, vacuum and check between a server's writes: every write of the
    server is acknowledged and on disk."""
    run = await run_fault(tmp_path, "cli-alongside")
    assert run.cli_failures == []
    assert run.refused_after == {} and run.read_after == "ok"
    assert len(run.acked_before) == len(run.acked_after) == 10
    assert run.lost == set() and run.integrity == "ok"
    assert "cli-write" in run.kept


# -- another application's file --------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(FOREIGN))
def test_another_applications_database_is_refused_and_left_untouched(tmp_path: Path, kind: str) -> None:
    """`baton serve` and a CLI write exit 1 with `storage` naming the file as not Baton's; its bytes, mtime
    and rollback journal are unchanged and nothing (no -wal, -shm or lock file) is created beside it."""
    run = run_foreign(tmp_path, kind)
    db_path = tmp_path / "baton.db"
    assert run.exits == {"serve": 1, "cli write": 1}
    for error in run.errors.values():
        assert error["code"] == "storage", run.errors
        assert error["message"].startswith(f"{db_path} is not a Baton database: ")
        assert "did not change it" in error["message"] and "--db" in error["message"]
    assert run.unchanged and run.header_journal == b"\x01\x01"
    assert run.files == ["baton.db"]


def test_a_foreign_file_stamped_with_a_future_version_is_not_called_newer(tmp_path: Path) -> None:
    """user_version 99 without Baton's tables is `storage` (not Baton's), not `schema_too_new`."""
    db_path = tmp_path / "baton.db"
    conn = sqlite3.connect(db_path)
    conn.executescript("CREATE TABLE sessions (id INTEGER PRIMARY KEY); PRAGMA user_version = 99;")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(StorageError, match="is not a Baton database: user_version 99, but without Baton's tables"):
        migrate(db_path)
    assert db_path.read_bytes() == before


def test_an_empty_file_and_a_database_without_tables_are_initialised(tmp_path: Path) -> None:
    """A 0-byte file, and a database whose only table was dropped (user_version 0), become Baton's."""
    empty, dropped = tmp_path / "empty.db", tmp_path / "dropped.db"
    empty.touch()
    conn = sqlite3.connect(dropped)
    conn.executescript("CREATE TABLE t (x); DROP TABLE t;")
    conn.close()
    assert dropped.stat().st_size > 0
    for path in (empty, dropped):
        assert migrate(path) == latest_version()


def test_the_tables_read_from_the_migrations_are_the_tables_they_create() -> None:
    """For every schema version, the table names recognition expects equal those a replay creates."""
    migrations = load_migrations()
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for applied, migration in enumerate(migrations, start=1):
            conn.executescript(migration.sql)
            assert database_tables(conn) == created_tables(migrations[:applied]), migration.name
    finally:
        conn.close()


# -- times outside the calendar --------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("tool", "arguments"), [
    ("list-sessions", {"created_before": "9999-12-31T23:59:59-01:00"}),
    ("project-summary", {"project": "p", "created_after": "0001-01-01T00:00:00+01:00"}),
])
async def test_a_time_that_leaves_the_calendar_in_utc_is_invalid(store: Store, mode: Mode, tool: str,
                                                                 arguments: dict[str, str]) -> None:
    """A valid ISO time whose offset carries it past year 9999 or before year 1 in UTC is `invalid`."""
    async with connected(store, mode, tools="all") as client:
        result = await client.call_tool(tool, arguments)
    assert error_code(result, tool) == "invalid", result_text(result)
    assert "out of range in UTC" in result_text(result)


async def test_times_at_the_ends_of_the_calendar_are_written_with_four_digit_years(store: Store) -> None:
    """0001-01-01 is kept as 0001-01-01T00:00:00.000Z, so it sorts before every real timestamp."""
    async with connected(store, "auto", tools="all") as client:
        await client.call_tool("create-session", {"session_id": "s1", "requirements": "r"})
        after_year_one = await client.call_tool("list-sessions", {"created_after": "0001-01-01"})
        before_year_999 = await client.call_tool("list-sessions", {"created_before": "0999-01-01"})
    assert after_year_one.structured_content and len(after_year_one.structured_content["items"]) == 1
    assert before_year_999.structured_content and before_year_999.structured_content["items"] == []


def test_prune_older_than_an_age_before_year_one_is_invalid(tmp_path: Path) -> None:
    """`baton prune --older-than` an age reaching before year 1 is `invalid` (exit 2), not a traceback."""
    for age in ("999999999999d", "9999999w"):
        proc = run_cli(tmp_path / "baton.db", "prune", "--older-than", age)
        assert proc.returncode == 2 and '"code": "invalid"' in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
