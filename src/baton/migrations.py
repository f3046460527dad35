"""Schema migrations, applied once at startup before anything else touches the database.

Rules (see README "Schema and migrations"):
- Migrations are `schema/NNNN_name.sql`, applied in numeric order. Shipped files are never edited;
  a change is a new file.
- Each migration runs in one `BEGIN IMMEDIATE` transaction together with its
  `PRAGMA user_version = NNNN` bump, so a failure leaves the previous version intact.
- A cross-process file lock (`<db>.lock`) serialises concurrent cold starts: the first process
  migrates, the others wait and then find nothing to do.
- A database whose version is newer than this code is refused (`schema_too_new`) and not
  modified in any way (the version is read before anything is written).
- Another application's database is refused (`storage`) and not modified in any way, not even
  its journal mode, and no file is created beside it. Baton's database is recognised by its
  user_version (1.. for every database Baton created; its first migration sets it together with
  the first tables) and by its tables being exactly those the applied migrations create. A file
  with no schema at all (0 bytes, or user_version 0 and no tables) is new and gets initialised.
- A non-empty database is copied with SQLite's online backup before the first pending migration.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from baton.clock import utc_now
from baton.errors import SchemaTooNew, StorageError

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_TABLE_DDL = re.compile(
    r"^\s*(CREATE|DROP)\s+(?:VIRTUAL\s+)?TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?[\"`\[]?(\w+)", re.I | re.M)
LOCK_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("baton.schema").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"schema files must be numbered 0001.. without gaps, found {versions}")
    return found


def latest_version() -> int:
    return len(load_migrations())


def read_user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def describe_sqlite_error(path: Path, exc: sqlite3.Error) -> StorageError:
    """Turn a low-level SQLite failure about the file into an error that names the path and a way out."""
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        hint = (
            "the file is not a valid SQLite database (corrupt or not Baton's). Baton never deletes it: "
            "move it aside, or point --db/BATON_DB at another file, and run `baton check` on a copy"
        )
    elif "readonly" in text or "read-only" in text:
        hint = "the database file or its directory is read-only: fix the permissions or choose another --db"
    elif "unable to open" in text:
        hint = "the file cannot be opened or created: check the directory exists and is writable, or choose --db"
    elif "full" in text:
        hint = "the disk is full: free space (nothing was written) and retry"
    else:
        hint = "check the file and its directory"
    return StorageError(f"{path}: {text}; {hint}")


def migrate(path: Path, migrations: list[Migration] | None = None) -> int:
    """Bring the database at `path` to the latest schema version; return that version."""
    migrations = load_migrations() if migrations is None else migrations
    target = migrations[-1].version if migrations else 0
    from filelock import FileLock, Timeout  # only the startup path needs it

    try:
        checked = _refuse_foreign_early(path, migrations, target)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)
        with lock:
            return _migrate_locked(path, migrations, target, checked=checked)
    except Timeout as exc:
        raise StorageError(f"{path}: another process held the migration lock for {LOCK_TIMEOUT_S:.0f}s") from exc
    except OSError as exc:  # PermissionError, or EROFS on a read-only mount (which root cannot bypass)
        raise StorageError(
            f"{path}: cannot create the database or its lock file {exc.filename or ''} ({exc.strerror}); "
            "make the directory writable or choose another --db / BATON_DB"
        ) from exc
    except sqlite3.Error as exc:
        raise describe_sqlite_error(path, exc) from exc


def _migrate_locked(path: Path, migrations: list[Migration], target: int, *, checked: bool) -> int:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        current = read_user_version(conn)  # read before writing anything, so a refusal changes nothing
        # A database found to be Baton's stays Baton's; one that did not exist or could not be read is checked now.
        reason = None if checked else _not_batons(conn, current, migrations, target)
        if reason is not None:
            raise _foreign(path, reason)
        if current > target:
            raise SchemaTooNew(
                f"{path} has schema version {current}, newer than this Baton's {target}; "
                "upgrade Baton (the database was not modified)"
            )
        if current == target:
            return current
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if _has_tables(conn):
            _backup(conn, path, current)
        for migration in migrations:
            if migration.version > current:
                _apply(conn, migration)
                log.info("applied migration %s", migration.name)
        return target
    finally:
        conn.close()


def created_tables(migrations: list[Migration]) -> frozenset[str]:
    """The tables that `migrations`, applied in order, leave behind (virtual ones included; not their
    shadow tables or sqlite_*). Read from the SQL text, since replaying it would cost ~10 ms at every
    start; tests/test_data_safety.py checks the two agree for every version."""
    return _created_tables(tuple(migrations))


@functools.cache
def _created_tables(migrations: tuple[Migration, ...]) -> frozenset[str]:
    tables: set[str] = set()
    for migration in migrations:
        for verb, name in _TABLE_DDL.findall(migration.sql):
            (tables.add if verb.upper() == "CREATE" else tables.discard)(name)
    return frozenset(tables)


def database_tables(conn: sqlite3.Connection) -> frozenset[str]:
    """The tables of the database on `conn`, counted the way `created_tables` counts them."""
    rows = conn.execute("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'virtual')"
                        " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchall()
    return frozenset(name for (name,) in rows)


def _not_batons(conn: sqlite3.Connection, current: int, migrations: list[Migration], target: int) -> str | None:
    """Why the database on `conn` is not Baton's; None if it is, or has no schema yet."""
    tables = database_tables(conn)
    if current == 0:
        if conn.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchone() is None:
            return None
        what = f"tables of its own ({_names(tables)})" if tables else "a schema of its own"
        return f"it has {what} but user_version 0, which no database Baton made has"
    if current > target:
        # A newer Baton keeps this one's tables (schema files are append-only): without them it is not Baton's.
        missing = created_tables(migrations) - tables
        return f"user_version {current}, but without Baton's tables {_names(missing)}" if missing else None
    expected = created_tables([m for m in migrations if m.version <= current])
    if tables == expected:
        return None
    return (f"user_version {current}, but its tables are not those of Baton's schema v{current}: not Baton's "
            f"{_names(tables - expected)}; missing {_names(expected - tables)}")


def not_batons(conn: sqlite3.Connection) -> str | None:
    """Why the database on `conn` is not Baton's; None if it is, or has no schema yet. For the commands
    that read a file without migrating it (`baton check`, `baton restore`)."""
    migrations = load_migrations()
    return _not_batons(conn, read_user_version(conn), migrations, migrations[-1].version if migrations else 0)


def _names(names: frozenset[str], shown: int = 6) -> str:
    listed = sorted(names)
    more = f" and {len(listed) - shown} more" if len(listed) > shown else ""
    return (", ".join(listed[:shown]) + more) if listed else "none"


def _foreign(path: Path, reason: str) -> StorageError:
    return StorageError(
        f"{path} is not a Baton database: {reason}. Baton did not change it in any way; point --db or "
        "BATON_DB at Baton's own database, or at a new file"
    )


def _refuse_foreign_early(path: Path, migrations: list[Migration], target: int) -> bool:
    """The check before the lock file is created, so a refused file gets nothing new beside it. True when
    the file was read and is Baton's (or has no schema yet); False when there is none or it cannot be read.

    Read-only: nothing is written (a read-only connection neither checkpoints nor switches the journal;
    on a file already in WAL mode SQLite creates the -wal and -shm any reader needs). When the file
    cannot be read here, the locked path reads it again and reports why.
    """
    try:
        if path.stat().st_size == 0:
            return False
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=30)
    except (OSError, sqlite3.Error):
        return False
    try:
        # One snapshot: read outside the lock, the version and the tables could straddle another process's
        # migrations (user_version 3 with v6's tables refused a real database at concurrent cold starts).
        conn.execute("BEGIN")
        reason = _not_batons(conn, read_user_version(conn), migrations, target)
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    if reason is not None:
        raise _foreign(path, reason)
    return True


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' LIMIT 1").fetchone() is not None


def _backup(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
    target = path.with_name(f"{path.name}.v{version}-{stamp}.bak")
    with sqlite3.connect(target) as dest:
        conn.backup(dest)
    dest.close()
    log.warning("backed up %s (schema v%d) to %s before migrating", path, version, target)
    return target


def _apply(conn: sqlite3.Connection, migration: Migration) -> None:
    # executescript() commits any open transaction first, so BEGIN goes inside the script.
    script = f"BEGIN IMMEDIATE;\n{migration.sql}\nPRAGMA user_version = {migration.version};\nCOMMIT;"
    try:
        conn.executescript(script)
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StorageError(f"migration {migration.name} failed and was rolled back: {exc}") from exc
