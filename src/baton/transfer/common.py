"""Shared plumbing of the transfer commands: read-only sources, the one-transaction target, the
import ledger, timestamp and JSON conversion."""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from baton.clock import format_utc, utc_now
from baton.errors import Busy, InvalidInput, NotFound, StorageError
from baton.migrations import describe_sqlite_error, migrate
from baton.models import AGENT_ALIASES

BUSY_TIMEOUT_MS = 5000
BEGIN_ATTEMPTS = 4

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
GROUP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RESERVED_GROUP_IDS = frozenset({"global", "session", "all", "default"})


# -- sources --------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def open_source(path: Path) -> Iterator[sqlite3.Connection]:
    """Open a SQLite file strictly read-only, never creating or changing anything beside it.

    Without a live `-wal` file the database is opened `immutable=1` (SQLite then takes no locks
    and creates no `-wal`/`-shm`, which also works on read-only media). With a live WAL (another
    program may be writing it) it is opened `mode=ro` instead, so the WAL's committed pages are
    seen; SQLite then uses the existing `-shm` file but writes nothing to the database.
    """
    if not path.is_file():
        raise NotFound(f"{path} does not exist or is not a file")
    wal = Path(f"{path}-wal")
    live = wal.exists() and wal.stat().st_size > 0
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("" if live else "&immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot be read as a SQLite database ({exc})") from exc
    try:
        conn.execute("BEGIN")  # one read transaction: a consistent snapshot of the whole source
        yield conn
    finally:
        conn.close()


def table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({quote(table)})")]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def row_digest(row: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


# -- target ---------------------------------------------------------------------------------------


class Target:
    """The Baton database being written: one `BEGIN IMMEDIATE` transaction for the whole change.

    `dry_run` runs everything and rolls back. When the target does not exist yet, or has an older
    schema that would first be migrated, a dry run works on a temporary copy so the real file is
    not created or touched at all.
    """

    def __init__(self, path: Path, *, dry_run: bool = False) -> None:
        self.path = path
        self.dry_run = dry_run
        self.work_path = path
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.conn: sqlite3.Connection | None = None

    def __enter__(self) -> Target:
        from baton.migrations import latest_version

        if self.dry_run and (not self.path.exists() or _user_version(self.path) != latest_version()):
            self._tmp = tempfile.TemporaryDirectory(prefix="baton-dry-run-")
            self.work_path = Path(self._tmp.name) / "baton.db"
            if self.path.exists():
                _copy_database(self.path, self.work_path)
        migrate(self.work_path)
        try:
            conn = sqlite3.connect(self.work_path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise describe_sqlite_error(self.path, exc) from exc
        self.conn = conn
        self._begin()
        return self

    def _begin(self) -> None:
        assert self.conn is not None
        for attempt in range(1, BEGIN_ATTEMPTS + 1):
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise describe_sqlite_error(self.path, exc) from exc
                if attempt == BEGIN_ATTEMPTS:
                    raise Busy(f"{self.path} stayed locked by another writer; nothing was written, retry") from exc
                time.sleep(random.uniform(0.01, 0.05) * attempt)

    def finish(self, *, commit: bool) -> None:
        assert self.conn is not None
        if commit and not self.dry_run:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise describe_sqlite_error(self.path, exc) from exc
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def chunk(self) -> None:
        """Commit the work so far and begin the next transaction (sync: one session per chunk)."""
        self.finish(commit=True)
        self._begin()

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self.conn.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def db(self) -> sqlite3.Connection:
        assert self.conn is not None
        return self.conn

    def count(self, table: str) -> int:
        return int(self.db.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0])

    def has_table(self, table: str) -> bool:
        row = self.db.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)).fetchone()
        return row is not None

    def insert(self, table: str, row: dict[str, Any]) -> int:
        columns = ", ".join(quote(c) for c in row)
        marks = ", ".join("?" for _ in row)
        cursor = self.db.execute(f"INSERT INTO {quote(table)} ({columns}) VALUES ({marks})", tuple(row.values()))
        return int(cursor.lastrowid or 0)

    # The import ledger: one `idempotency_keys` row per imported source row, so a re-run skips it.
    def ledger_get(self, operation: str, session_id: str, key: str) -> tuple[str, dict[str, Any]] | None:
        row = self.db.execute(
            "SELECT request_hash, response FROM idempotency_keys WHERE session_id = ? AND operation = ? AND key = ?",
            (session_id, operation, key),
        ).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def ledger_put(self, operation: str, session_id: str, key: str, digest: str, response: dict[str, Any]) -> bool:
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO idempotency_keys (session_id, operation, key, request_hash, response, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (session_id, operation, key, digest, json.dumps(response, ensure_ascii=False, sort_keys=True), utc_now()),
        )
        return cursor.rowcount == 1


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as exc:
        raise describe_sqlite_error(path, exc) from exc
    finally:
        conn.close()


def _copy_database(source: Path, dest: Path) -> None:
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        with sqlite3.connect(dest) as out:
            src.backup(out)
        out.close()
    finally:
        src.close()


def copy_file_aside(path: Path, suffix: str) -> Path:
    aside = path.with_name(f"{path.name}.{suffix}")
    shutil.copy2(path, aside)
    return aside


# -- values ---------------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """Baton's stored JSON form (as the operations write it): compact, UTF-8 kept as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


OUT_OF_RANGE = "is out of range in UTC"  # a time past 9999-12-31 or before 0001-01-01 once converted to UTC


class BadTime(InvalidInput):
    """A source value that is no usable time. `value` is the value as the source holds it, so the
    importer can say which row holds it (`locate`)."""

    def __init__(self, value: Any, problem: str) -> None:
        super().__init__(f"{value!r} {problem}")
        self.value = value


def utc_text(value: str | None) -> str | None:
    """A UTC timestamp as BAZINGA's SQL writes it (`YYYY-MM-DD HH:MM:SS`) in Baton's form."""
    if value is None:
        return None
    moment = parse_time(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _utc(moment, value)


def local_text(value: str | None, offset: timedelta) -> str | None:
    """A naive local timestamp (Python `datetime.now().isoformat()`) converted with `offset`."""
    if value is None:
        return None
    moment = parse_time(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone(offset))
    return _utc(moment, value)


def _utc(moment: datetime, value: Any) -> str:
    try:
        return format_utc(moment)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00: a valid time whose offset carries it past the calendar
        raise BadTime(value, f"{OUT_OF_RANGE} (Baton keeps times from 0001-01-01 to 9999-12-31 UTC)") from None


def parse_time(value: Any) -> datetime:
    if not isinstance(value, str):  # SQLite columns hold whatever was put there
        raise BadTime(value, "is not a timestamp")
    text = value.strip().replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadTime(value, "is not a timestamp") from exc


def locate(src: sqlite3.Connection, value: Any, *, first: str | None = None) -> str | None:
    """Where the source holds `value`: `table.column (rowid N)` of a cell equal to it, looking in table
    `first` before the others; None if no cell is. For errors raised where only the value was known."""
    tables = [row[0] for row in src.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        " ORDER BY name = ? DESC, rowid", (first,))]
    for table in tables:
        for column in table_columns(src, table):
            try:
                row = src.execute(f"SELECT rowid FROM {quote(table)} WHERE {quote(column)} = ? LIMIT 1",
                                  (value,)).fetchone()
            except sqlite3.Error:  # a WITHOUT ROWID table
                continue
            if row is not None:
                return f"{table}.{column} (rowid {row[0]})"
    return None


def parse_offset(text: str) -> timedelta:
    match = re.fullmatch(r"(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?", text.strip())
    if text.strip().upper() in {"Z", "UTC", "0", "+0", "-0"}:
        return timedelta(0)
    if not match:
        raise InvalidInput(f"--local-offset {text!r}: expected an offset such as +01:00, -05:00 or UTC")
    sign = -1 if match.group(1) == "-" else 1
    return sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))


def format_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def machine_offset(moment: datetime) -> timedelta:
    """The offset of this machine's local zone at `moment` (a naive local time); today's offset when
    `moment` is too near the ends of the calendar for the platform to convert."""
    try:
        local = moment.astimezone()  # a naive datetime is interpreted as local time
    except (OverflowError, OSError, ValueError):
        local = datetime.now().astimezone()
    return local.utcoffset() or timedelta(0)


def normalise_agent_type(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().lower().replace("-", "_").replace(" ", "_")
    return AGENT_ALIASES.get(text, text)


def valid_session_id(value: Any) -> bool:
    return isinstance(value, str) and bool(SESSION_ID.match(value)) and not _looks_like_template(value)


def valid_group_id(value: Any, *, scope: bool = False) -> bool:
    if not isinstance(value, str) or not GROUP_ID.match(value):
        return False
    return scope or value.lower() not in RESERVED_GROUP_IDS


def _looks_like_template(value: str) -> bool:
    return bool(re.search(r"[{}<>]|\$[A-Za-z_{]", value))
