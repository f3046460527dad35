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
- A non-empty database is copied with SQLite's online backup before the first pending migration.
"""

from __future__ import annotations

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
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)
        with lock:
            return _migrate_locked(path, migrations, target)
    except Timeout as exc:
        raise StorageError(f"{path}: another process held the migration lock for {LOCK_TIMEOUT_S:.0f}s") from exc
    except OSError as exc:  # PermissionError, or EROFS on a read-only mount (which root cannot bypass)
        raise StorageError(
            f"{path}: cannot create the database or its lock file {exc.filename or ''} ({exc.strerror}); "
            "make the directory writable or choose another --db / BATON_DB"
        ) from exc
    except sqlite3.Error as exc:
        raise describe_sqlite_error(path, exc) from exc


def _migrate_locked(path: Path, migrations: list[Migration], target: int) -> int:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        current = read_user_version(conn)  # read before writing anything, so a refusal changes nothing
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
