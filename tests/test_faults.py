"""Filesystem faults a user hits: each gives a clear error naming the path and a way out, and the
user's database file is never deleted or rewritten."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
from stress.harness import serve

from tests.helpers import cli_json, run_cli
from tests.proof_helpers import (
    fill_disk,
    immutable,
    read_only_mount,
    run_serve,
    small_tmpfs,
    stderr_error,
    text_of,
)


def _seed(db_path: Path) -> None:
    cli_json(db_path, "create-session", "--session-id", "s1", "--requirements", "keep me")
    cli_json(db_path, "log-interaction", "--session-id", "s1", "--agent-type", "developer", "--content", "kept")
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def test_missing_database_in_a_read_only_directory_is_a_clear_error(tmp_path: Path) -> None:
    """serve and the CLI exit 1 with `storage`, naming the path and saying to choose a writable place."""
    directory = tmp_path / "ro"
    db_path = directory / "baton.db"
    with read_only_mount(directory):
        served = run_serve(db_path)
        cli = run_cli(db_path, "create-session", "--requirements", "r")  # a write: it would create the file
        assert not db_path.exists()
    for proc in (served, cli):
        error = stderr_error(proc.stderr)
        assert proc.returncode == 1, proc.stderr
        assert error["code"] == "storage" and str(db_path) in error["message"], proc.stderr
        assert "writable" in error["message"] and "--db" in error["message"]
        assert "Traceback" not in proc.stderr


def test_existing_database_on_a_read_only_mount_is_refused_and_untouched(tmp_path: Path) -> None:
    """A database whose directory became read-only: a clear error naming it; its bytes are unchanged."""
    directory = tmp_path / "ro"
    db_path = directory / "baton.db"
    directory.mkdir()
    _seed(db_path)
    before = db_path.read_bytes()
    with read_only_mount(directory):
        served = run_serve(db_path)
        cli = run_cli(db_path, "get-session", "--session-id", "s1")
    for proc in (served, cli):
        error = stderr_error(proc.stderr)
        assert proc.returncode == 1 and error["code"] == "storage", proc.stderr
        assert str(db_path) in error["message"] and "Read-only file system" in error["message"]
        assert "Traceback" not in proc.stderr
    assert db_path.read_bytes() == before


async def test_read_only_database_file_serves_reads_and_refuses_writes_by_name(tmp_path: Path) -> None:
    """With the file immutable (root cannot write it either): reads work, a write is `read_only` naming the
    file, and the file's bytes are unchanged."""
    db_path = tmp_path / "baton.db"
    _seed(db_path)
    before = db_path.read_bytes()
    with immutable(db_path):
        with anyio.fail_after(60):
            async with serve(db_path) as client:
                read = await client.call_tool("get-session", {"session_id": "s1"})
                write = await client.call_tool("log-interaction", {
                    "session_id": "s1", "agent_type": "developer", "content": "cannot land"})
                again = await client.call_tool("health", {})
        cli = run_cli(db_path, "log-interaction", "--session-id", "s1", "--agent-type", "qa", "--content", "no")
        assert db_path.read_bytes() == before
    assert not read.is_error and read.structured_content and read.structured_content["requirements"] == "keep me"
    assert write.is_error
    assert text_of(write).startswith(f"Error executing tool log-interaction: read_only: {db_path} is read-only")
    assert not again.is_error
    error = stderr_error(cli.stderr)
    assert cli.returncode == 1 and error["code"] == "read_only" and str(db_path) in error["message"]


async def test_disk_full_is_a_clear_error_and_the_server_recovers_when_space_returns(tmp_path: Path) -> None:
    """On a full tmpfs a write fails with `storage` saying the disk is full, nothing earlier is lost, and
    once space is freed the same server process writes again."""
    directory = tmp_path / "small"
    db_path = directory / "baton.db"
    with small_tmpfs(directory, "2m"):
        _seed(db_path)
        with anyio.fail_after(120):
            async with serve(db_path) as client:
                pid = (await client.call_tool("health", {})).structured_content
                filler = fill_disk(directory)
                big = await client.call_tool("log-interaction", {
                    "session_id": "s1", "agent_type": "developer", "content": "y" * 1_500_000})
                read = await client.call_tool("get-session", {"session_id": "s1"})
                filler.unlink()
                after = await client.call_tool("log-interaction", {
                    "session_id": "s1", "agent_type": "developer", "content": "space again"})
                same = (await client.call_tool("health", {})).structured_content
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        contents = [row[0] for row in conn.execute("SELECT content FROM logs ORDER BY log_id")]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
    assert big.is_error, "the write that could not fit was acknowledged"
    message = text_of(big)
    assert message.startswith("Error executing tool log-interaction: storage: "), message
    assert str(db_path) in message and "disk is full" in message
    assert not read.is_error, text_of(read)
    assert not after.is_error, text_of(after)
    assert pid is not None and same is not None and pid["pid"] == same["pid"]
    assert contents == ["kept", "space again"] and integrity == "ok"


def test_a_file_that_is_not_a_database_is_refused_by_name_and_kept(tmp_path: Path) -> None:
    """Garbage at the database path: serve and the CLI say it is not a valid SQLite database, name it, and
    leave it byte for byte (never deleted, never 'recovered')."""
    db_path = tmp_path / "baton.db"
    garbage = b"this was somebody's spreadsheet\n" * 2000
    db_path.write_bytes(garbage)
    served = run_serve(db_path)
    cli = run_cli(db_path, "log-interaction", "--session-id", "s1", "--agent-type", "qa", "--content", "x")
    for proc in (served, cli):
        error = stderr_error(proc.stderr)
        assert proc.returncode == 1 and error["code"] == "storage", proc.stderr
        assert str(db_path) in error["message"] and "not a valid SQLite database" in error["message"]
        assert "never deletes" in error["message"]
    assert db_path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["baton.db"]


async def test_damaged_pages_give_a_storage_error_and_the_file_is_not_rewritten(tmp_path: Path) -> None:
    """A real database with a damaged page: reads that touch it fail with `storage` naming the file and
    saying it is corrupt; the file's bytes are unchanged afterwards."""
    db_path = tmp_path / "baton.db"
    _seed(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'logs'").fetchone()[0]
    conn.close()
    data = bytearray(db_path.read_bytes())
    start = (root - 1) * page_size
    data[start:start + page_size] = b"\xa5" * page_size
    db_path.write_bytes(bytes(data))
    damaged = bytes(data)
    with anyio.fail_after(60):
        async with serve(db_path) as client:
            result = await client.call_tool("get-logs", {"session_id": "s1"})
            health = await client.call_tool("health", {})
    assert result.is_error
    message = text_of(result)
    assert message.startswith("Error executing tool get-logs: storage: "), message
    assert str(db_path) in message and "corrupt" in message and "never deletes" in message
    assert not health.is_error, "the server stopped serving after a corrupt read"
    assert db_path.read_bytes() == damaged
