"""The store: one SQLite file in WAL mode, reached through aiosqlite.

Concurrency model (see README "Many agents at once"):
- One writer connection per process. Every write transaction takes the process's `anyio.Lock`
  (one aiosqlite connection does not isolate coroutines from each other), begins with
  `BEGIN IMMEDIATE` (so it never fails half-way upgrading a read lock), stays short, and commits
  inside a cancellation shield: a write is acknowledged only after COMMIT returned.
- SQLite's busy_timeout makes a writer wait for other processes; if the lock is still not
  obtained, `BEGIN IMMEDIATE` is retried a bounded number of times with jitter, then `busy`.
- Reads use a small pool of separate connections, each read in its own read transaction (a
  consistent snapshot across several queries) and never take the write lock.
- Before each commit and each read the database file and its -wal must still be the ones opened
  (file_identity.py). If not, what this server acknowledged is rescued once (checkpointed, and
  copied aside if the database file itself went) and every later read and write is `storage`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from baton.caller import audited
from baton.clock import utc_now
from baton.errors import BatonError, Busy, Conflict, InvalidInput, ReadOnly, StorageError
from baton.file_identity import Loss, OpenedFiles, rescue
from baton.migrations import describe_sqlite_error, migrate

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
BEGIN_ATTEMPTS = 4
READERS = 4


async def _connect(path: Path, *, read_only: bool = False) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    # PRAGMAs once per connection, outside any transaction (inside one, foreign_keys is ignored).
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA synchronous = NORMAL")
    if read_only:
        await conn.execute("PRAGMA query_only = ON")
    return conn


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


class Store:
    """Open with `await Store.open(path)`; close with `await store.close()` (or `async with`)."""

    def __init__(self, path: Path, writer: aiosqlite.Connection) -> None:
        self.path = path
        self._writer = writer
        self._write_lock = anyio.Lock()
        self._readers: list[aiosqlite.Connection] = []
        self._reader_count = 0
        self._reader_slots = anyio.Semaphore(READERS)
        self._reader_open_lock = anyio.Lock()
        self.schema_version = 0
        self._opened = OpenedFiles.record(path)
        self._lost: str | None = None  # why this store refuses everything, once its files were lost

    @classmethod
    async def open(cls, path: Path) -> Store:
        version = await anyio.to_thread.run_sync(migrate, path)
        try:
            writer = await _connect(path)
            journal = (await (await writer.execute("PRAGMA journal_mode = WAL")).fetchone() or ["?"])[0]
        except sqlite3.Error as exc:
            raise describe_sqlite_error(path, exc) from exc
        if journal != "wal":
            log.warning("%s: journal_mode is %s, not wal (is the file on a network filesystem?)", path, journal)
        store = cls(path, writer)  # records the files' identity: the -wal exists since journal_mode returned
        store.schema_version = version
        return store

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):
            for conn in [*self._readers, self._writer]:
                await conn.close()
            self._readers.clear()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- transactions -------------------------------------------------------------------------

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One short write transaction; committed (shielded) when the block exits normally."""
        async with self._write_lock:
            self._refuse_if_lost()
            conn = self._writer
            await self._begin_immediate(conn)
            try:
                async with audited(conn):  # the audit row of a tool call's write, in the same transaction
                    yield conn
            except BaseException as exc:
                with anyio.CancelScope(shield=True):
                    await self._rollback(conn)
                if isinstance(exc, sqlite3.Error):
                    raise self._storage_error(exc) from exc
                raise
            with anyio.CancelScope(shield=True):
                loss = self._check_file_identity()
                if loss is not None:
                    await self._rollback(conn)
                    await self._rescue(loss)
                    self._refuse_if_lost()
                try:
                    await conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    await self._rollback(conn)
                    raise self._storage_error(exc) from exc

    @staticmethod
    async def _rollback(conn: aiosqlite.Connection) -> None:
        # SQLite rolls back by itself on some errors (SQLITE_FULL, IOERR): then there is nothing to undo,
        # and a ROLLBACK would fail and hide the real error.
        if conn.in_transaction:
            try:
                await conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("ROLLBACK failed on %s", conn)

    async def _begin_immediate(self, conn: aiosqlite.Connection) -> None:
        for attempt in range(1, BEGIN_ATTEMPTS + 1):
            try:
                # Shielded: cancelled while SQLite waits for another process's lock, the BEGIN would still
                # complete in aiosqlite's thread and leave a transaction (and the file's write lock) open with
                # nobody to end it. The cancellation arrives at the next await, in write()'s rollback handler.
                with anyio.CancelScope(shield=True):
                    await conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise self._storage_error(exc) from exc
                if attempt == BEGIN_ATTEMPTS:
                    raise Busy(
                        f"{self.path} stayed locked by another writer for "
                        f"{BEGIN_ATTEMPTS * BUSY_TIMEOUT_MS / 1000:.0f}s; nothing was written, retry"
                    ) from exc
                await anyio.sleep(random.uniform(0.01, 0.05) * attempt)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read transaction on a pooled connection: every query inside sees one snapshot."""
        # Checked before a reader is taken: one opened now on a replaced path would read the other file.
        loss = None if self._lost else self._check_file_identity()
        if loss is not None:
            async with self._write_lock:
                await self._rescue(loss)
        self._refuse_if_lost()
        async with self._reader_slots:
            conn = await self._take_reader()
            try:
                with anyio.CancelScope(shield=True):  # a cancelled BEGIN would still run: see _begin_immediate
                    await conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    with anyio.CancelScope(shield=True):
                        # Nothing was written: ending the snapshot cannot lose anything, and an error here
                        # (a corrupt page the body already hit) must not hide the body's own error.
                        await self._rollback(conn)
            except sqlite3.Error as exc:
                # Corrupt pages, I/O errors, a full disk: name the file and say what to do, not "internal".
                raise self._storage_error(exc) from exc
            finally:
                self._readers.append(conn)

    async def _take_reader(self) -> aiosqlite.Connection:
        if self._readers:
            return self._readers.pop()
        async with self._reader_open_lock:
            self._reader_count += 1
            return await _connect(self.path, read_only=True)

    # -- the files at the path are not the ones open ------------------------------------------

    def _check_file_identity(self) -> Loss | None:
        return self._opened.loss()

    def _refuse_if_lost(self) -> None:
        if self._lost is not None:
            raise StorageError(self._lost)

    async def _rescue(self, loss: Loss) -> None:
        """Keep what this server acknowledged, then refuse everything. Called under the write lock."""
        if self._lost is None:
            with anyio.CancelScope(shield=True):
                self._lost = await rescue(self._writer, self.path, loss)
            log.error("%s", self._lost)

    async def watch_files(self, interval: float = 0.5) -> None:
        """Check the files every `interval` s and rescue on the first loss; return once this store is lost.

        The checks in `read()` and `write()` notice only at the next call. Until then a SIGKILL loses
        every acknowledged write left in a deleted -wal, and another process opening a file moved over
        the database reads this server's -wal into it. Run it in a task group cancelled before `close()`.
        """
        while self._lost is None:
            await anyio.sleep(interval)
            loss = self._check_file_identity()
            if loss is not None:
                async with self._write_lock:
                    await self._rescue(loss)

    def _storage_error(self, exc: sqlite3.Error) -> BatonError:
        if isinstance(exc, sqlite3.IntegrityError):
            # A constraint the input models did not catch first; nothing was written.
            return InvalidInput(f"rejected by a database constraint ({exc}); nothing was written")
        if "readonly" in str(exc):
            return ReadOnly(f"{self.path} is read-only: fix its permissions or choose another --db")
        return describe_sqlite_error(self.path, exc)

    # -- helpers used by the operations ------------------------------------------------------

    async def idempotent(
        self,
        conn: aiosqlite.Connection,
        *,
        session_id: str,
        operation: str,
        key: str | None,
        payload: dict[str, Any],
        write: Callable[[], Awaitable[dict[str, Any]]],
    ) -> tuple[dict[str, Any], bool]:
        """Run `write` once per (session, operation, key); a repeat returns the stored result.

        Must be called inside `write()`. Returns (result, replayed).
        """
        if key is None:
            return await write(), False
        digest = request_digest(payload)
        row = await recorded_request(conn, session_id, operation, key)
        if row is not None:
            if row["request_hash"] != digest:
                raise Conflict(
                    f"idempotency_key {key!r} was already used for {operation} in session {session_id} "
                    "with a different payload; use a new key for a new write"
                )
            return json.loads(row["response"]), True
        result = await write()
        await record_request(conn, session_id, operation, key, digest, result)
        return result, False


def request_digest(payload: dict[str, Any]) -> str:
    """What identifies a request for retries: a hash of its payload (key order ignored)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


async def recorded_request(conn: aiosqlite.Connection, session_id: str, operation: str,
                           key: str) -> sqlite3.Row | None:
    """The first request made with this key, if any: its `request_hash` and `response`."""
    return await fetch_one(
        conn, "SELECT request_hash, response FROM idempotency_keys WHERE session_id = ? AND operation = ? AND key = ?",
        (session_id, operation, key))


async def record_request(conn: aiosqlite.Connection, session_id: str, operation: str, key: str, digest: str,
                         response: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO idempotency_keys (session_id, operation, key, request_hash, response, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (session_id, operation, key, digest, json.dumps(response), utc_now()),
    )


Params = tuple[Any, ...] | dict[str, Any]  # positional `?` or named `:name` parameters

# Every await on an aiosqlite connection is a round trip to its thread (a queue put, a thread
# wake-up, an event-loop wake-up: ~0.1-0.3 ms here, more than most of our statements take).
# execute + fetch + close on a cursor was three; execute_fetchall is one.


async def fetch_one(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> sqlite3.Row | None:
    """The first row of a query that returns at most one (by key, LIMIT 1, an aggregate, RETURNING)."""
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def fetch_all(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> list[sqlite3.Row]:
    return list(await conn.execute_fetchall(sql, params))
