"""Care of the database: `baton backup`, `restore`, `check`, `prune`, `vacuum`.

- backup: SQLite's online backup API in one step, i.e. inside one read transaction on the live
  database: a consistent snapshot that contains every write committed before it began, taken
  while servers keep writing (WAL readers never block writers). Written to `PATH.partial`,
  checked (`quick_check`), switched to journal_mode DELETE (one self-contained file), then
  renamed into place.
- restore: refuses a file that is not a Baton database (recognised as `migrate` does), and one
  that another process holds open (see `holders`) unless `--force`; first saves the current
  database with the same online backup to `<db>.replaced-<UTC stamp>`, then copies the backup
  *into* the database through SQLite (one transaction, so a process that still has it open sees
  either the old or the restored content, never a torn file), then migrates it if the backup's
  schema is older.
- check: `integrity_check`, `foreign_key_check`, schema version against this Baton, whether the
  file is Baton's at all (its tables are those of its schema version, as `migrate` checks), sizes
  and row counts; read-only, never migrates; exit 1 when anything is wrong.
- prune: logs of finished sessions whose last activity is older than `--older-than`; a dry run
  (shows what would go) unless `--yes`; sessions, groups, criteria and tokens are kept.
- vacuum: checkpoint, `VACUUM`, checkpoint; reports the bytes reclaimed.

Every command prints one JSON object on stdout; errors are `{"error": ...}` on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from baton.clock import format_utc, utc_now
from baton.errors import BatonError, Conflict, InvalidInput, NotFound, StorageError
from baton.migrations import describe_sqlite_error, latest_version, migrate, not_batons
from baton.paths import resolve_db_path

BUSY_TIMEOUT_MS = 5000
TERMINAL = ("completed", "failed", "cancelled")
LOG_OPERATIONS = ("log-interaction", "log-interactions", "save-reasoning", "save-event")
# os_unix.c: UNIX_SHM_BASE = (22 + SQLITE_SHM_NLOCK) * 4 = 120; the "dead man switch" byte after
# the 8 lock bytes. Every connection that has a WAL database open holds a shared lock on it.
SHM_DMS_BYTE = 128


def _stamp() -> str:
    return utc_now().replace("-", "").replace(":", "").replace(".", "")


def _connect_ro(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise NotFound(f"{path} does not exist")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except sqlite3.Error as exc:
        raise describe_sqlite_error(path, exc) from exc
    return conn


def _files_bytes(path: Path) -> dict[str, int]:
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        p = Path(f"{path}{suffix}")
        sizes[f"db{suffix.replace('-', '_')}_bytes"] = p.stat().st_size if p.exists() else 0
    return sizes


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    counts: dict[str, int] = {}
    for name in names:
        try:
            counts[name] = int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
        except sqlite3.Error:  # e.g. an FTS5 shadow table this build cannot read
            continue
    return counts


# -- backup ---------------------------------------------------------------------------------------


def backup(db: Path, to: Path | None = None) -> dict[str, Any]:
    if to is None:
        to = db.parent / "backups" / f"{db.stem}-{_stamp()}.db"
    elif to.is_dir():
        to = to / f"{db.stem}-{_stamp()}.db"
    if to.exists():
        raise Conflict(f"{to} already exists; choose another --to (a backup never overwrites a file)")
    to.parent.mkdir(parents=True, exist_ok=True)
    partial = to.with_name(to.name + ".partial")
    partial.unlink(missing_ok=True)
    src = _connect_ro(db)
    try:
        dest = sqlite3.connect(partial, isolation_level=None)
        try:
            began = utc_now()
            src.backup(dest)  # pages=-1: one step, one read transaction, one consistent snapshot
            dest.execute("PRAGMA journal_mode = DELETE")
            check = dest.execute("PRAGMA quick_check").fetchone()[0]
            version = int(dest.execute("PRAGMA user_version").fetchone()[0])
            counts = _counts(dest)
        finally:
            dest.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise describe_sqlite_error(db, exc) from exc
    finally:
        src.close()
    if check != "ok":
        partial.unlink(missing_ok=True)
        raise StorageError(f"the backup of {db} failed quick_check ({check}); run `baton check` on the database")
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    partial.replace(to)
    return {"backup": str(to), "database": str(db), "began_at": began, "bytes": to.stat().st_size,
            "schema_version": version, "quick_check": check, "counts": counts}


# -- who holds the database -----------------------------------------------------------------------


def holders(db: Path) -> dict[str, Any]:
    """Is the database open in another process? Two independent signals.

    1. The WAL "dead man switch": every SQLite connection with a WAL database open holds a shared
       fcntl lock on byte 128 of `<db>-shm` for as long as it is open (this is how SQLite itself
       knows whether it is the first connection). If an exclusive lock on that byte cannot be
       taken, some process has the database open. Works for every POSIX process whatever its
       user, as long as this process may open the -shm file.
    2. On Linux, /proc/*/fd is scanned for the database, -wal and -shm files, to name the
       processes (only processes this user may inspect are seen).
    A Baton server keeps its connection open for its whole life, so both see a running server.
    """
    result: dict[str, Any] = {"held": False, "pids": [], "shm_lock": "no -shm file (no WAL connection open)"}
    shm = Path(f"{db}-shm")
    if shm.exists():
        result["shm_lock"] = _probe_shm(shm)
        result["held"] = result["shm_lock"] == "held"
    pids = _proc_holders(db)
    result["pids"] = pids
    result["held"] = result["held"] or bool(pids)
    return result


def _probe_shm(shm: Path) -> str:
    try:
        import fcntl
    except ImportError:  # Windows: no fcntl; rely on the process scan
        return "not checked (no fcntl on this platform)"
    try:
        fd = os.open(shm, os.O_RDWR)
    except OSError as exc:
        return f"not checked ({exc.strerror})"
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, SHM_DMS_BYTE)
        except OSError:
            return "held"
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, SHM_DMS_BYTE)
        return "free"
    finally:
        os.close(fd)


def _proc_holders(db: Path) -> list[dict[str, Any]]:
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    wanted = {str(db.resolve()) + suffix for suffix in ("", "-wal", "-shm")}
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target in wanted:
                try:
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    cmd = "?"
                found.append({"pid": int(entry.name), "command": cmd[:200]})
                break
    return found


# -- restore --------------------------------------------------------------------------------------


def restore(db: Path, source: Path, *, force: bool) -> dict[str, Any]:
    if source.resolve() == db.resolve():
        raise InvalidInput("the backup to restore is the database itself")
    src = _connect_ro(source)
    try:
        check = src.execute("PRAGMA quick_check").fetchone()[0]
        version = int(src.execute("PRAGMA user_version").fetchone()[0])
        foreign = not_batons(src) if check == "ok" else None
    except sqlite3.Error as exc:
        src.close()
        raise describe_sqlite_error(source, exc) from exc
    if foreign is not None:
        src.close()
        raise InvalidInput(f"{source} is not a Baton backup: {foreign}; nothing was changed")
    if check != "ok" or version < 1:  # version 0 here: no schema at all
        src.close()
        raise InvalidInput(f"{source} is not a sound Baton database (quick_check {check!r}, schema version "
                           f"{version}); nothing was changed")
    if version > latest_version():
        src.close()
        raise InvalidInput(f"{source} has schema version {version}, newer than this Baton's {latest_version()}")
    held: dict[str, Any] = holders(db) if db.exists() else {"held": False, "pids": []}
    if held["held"] and not force:
        src.close()
        who = ", ".join(f"pid {p['pid']} ({p['command']})" for p in held["pids"]) or "a process (WAL lock held)"
        raise Conflict(f"{db} is open in {who}; stop the servers first, or pass --force to restore under them "
                       "(they then see the restored content); nothing was changed")
    replaced = None
    try:
        if db.exists():
            replaced = db.with_name(f"{db.name}.replaced-{_stamp()}")
            backup(db, replaced)
        db.parent.mkdir(parents=True, exist_ok=True)
        dest = sqlite3.connect(db, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            dest.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            src.backup(dest)  # through SQLite: one transaction on the destination
            dest.execute("PRAGMA journal_mode = WAL")
        finally:
            dest.close()
    except sqlite3.Error as exc:
        raise describe_sqlite_error(db, exc) from exc
    finally:
        src.close()
    migrated_to = migrate(db)
    return {"restored": str(db), "from": str(source), "replaced_file_kept_at": str(replaced) if replaced else None,
            "forced_while_held": bool(held["held"]), "holders": held["pids"], "backup_schema_version": version,
            "schema_version": migrated_to}


# -- check ----------------------------------------------------------------------------------------


def check(db: Path) -> dict[str, Any]:
    conn = _connect_ro(db)
    try:
        conn.execute("BEGIN")
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        fk = [dict(zip(("table", "rowid", "parent", "fkid"), r, strict=False))
              for r in conn.execute("PRAGMA foreign_key_check")]
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        freelist = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        journal = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
        counts = _counts(conn)
        foreign = not_batons(conn)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise describe_sqlite_error(db, exc) from exc
    finally:
        conn.close()
    latest = latest_version()
    problems = []
    if foreign is not None:  # a server would refuse it untouched: its version says nothing about Baton's schema
        problems.append(f"{db} is not a Baton database: {foreign}")
    if integrity != ["ok"]:
        problems.append(f"integrity_check: {integrity[:5]}")
    if fk:
        problems.append(f"foreign_key_check: {len(fk)} row(s) point at missing parents")
    if version > latest and foreign is None:
        problems.append(f"schema version {version} is newer than this Baton's {latest}")
    notes = []
    if version < latest and foreign is None:
        notes.append(f"schema version {version} is older than {latest}: the next server start migrates it")
    return {
        "database": str(db), "ok": not problems,
        "integrity_check": integrity[:20], "foreign_key_violations": fk[:20], "schema_version": version,
        "latest_schema_version": latest, "journal_mode": journal, "page_size": page_size, "page_count": page_count,
        "freelist_pages": freelist, **_files_bytes(db), "counts": counts, "problems": problems,
        "notes": notes,
    }


# -- prune ----------------------------------------------------------------------------------------


def parse_age(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([dhw]?)\s*", text)
    if not match:
        raise InvalidInput(f"--older-than {text!r}: expected e.g. 90d, 12w or 36h")
    unit = {"h": "hours", "w": "weeks"}.get(match.group(2), "days")
    try:
        age = timedelta(**{unit: int(match.group(1))})
    except OverflowError:
        age = timedelta.max
    if age > datetime.now(UTC) - datetime.min.replace(tzinfo=UTC):
        raise InvalidInput(f"--older-than {text!r} reaches back before the year 1; give a smaller age")
    return age


def prune(db: Path, older_than: timedelta, *, project: str | None, apply: bool) -> dict[str, Any]:
    from baton.transfer.common import Target

    if not db.exists():
        raise NotFound(f"{db} does not exist")
    cutoff = format_utc(datetime.now(UTC) - older_than)
    in_project = "WHERE s.project = ?" if project is not None else ""
    with Target(db) as target:
        conn = target.db
        # Last activity is the session's own last change or its newest log, whichever is later: a log
        # written after a session ended (a late agent, a merged copy) is not old.
        rows = conn.execute(
            "WITH activity AS (SELECT s.session_id, s.project, s.status,"
            " max(coalesce(s.ended_at, s.updated_at),"
            "     coalesce((SELECT max(l.timestamp) FROM logs l WHERE l.session_id = s.session_id), ''))"
            "   AS last_activity,"
            " (SELECT count(*) FROM logs l WHERE l.session_id = s.session_id) AS logs,"
            " (SELECT coalesce(sum(l.content_length), 0) FROM logs l WHERE l.session_id = s.session_id) AS chars"
            f" FROM sessions s {in_project})"
            " SELECT * FROM activity WHERE last_activity < ? ORDER BY last_activity",
            [*([project] if project is not None else []), cutoff]).fetchall()
        finished = [dict(r) for r in rows if r["status"] in TERMINAL and r["logs"] > 0]
        kept = [{"session_id": r["session_id"], "status": r["status"], "reason": "not finished"}
                for r in rows if r["status"] not in TERMINAL]
        if apply and finished:
            ids = [r["session_id"] for r in finished]
            marks = ", ".join("?" for _ in ids)
            conn.execute(f"DELETE FROM logs WHERE session_id IN ({marks})", ids)
            ops = ", ".join("?" for _ in LOG_OPERATIONS)
            conn.execute(f"DELETE FROM idempotency_keys WHERE session_id IN ({marks}) AND operation IN ({ops})",
                         [*ids, *LOG_OPERATIONS])
            target.finish(commit=True)
        else:
            target.finish(commit=False)
    return {"database": str(db), "dry_run": not apply, "cutoff": cutoff, "project": project,
            "sessions": finished, "logs": sum(r["logs"] for r in finished),
            "content_chars": sum(r["chars"] for r in finished), "kept": kept,
            "hint": None if apply else "dry run: nothing was deleted; add --yes to delete these logs"}


# -- vacuum ---------------------------------------------------------------------------------------


def vacuum(db: Path) -> dict[str, Any]:
    if not db.exists():
        raise NotFound(f"{db} does not exist")
    migrate(db)
    before = _files_bytes(db)
    conn = sqlite3.connect(db, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        raise describe_sqlite_error(db, exc) from exc
    finally:
        conn.close()
    after = _files_bytes(db)
    total_before = before["db_bytes"] + before["db_wal_bytes"]
    total_after = after["db_bytes"] + after["db_wal_bytes"]
    return {"database": str(db), "bytes_before": total_before, "bytes_after": total_after,
            "reclaimed_bytes": max(0, total_before - total_after)}


# -- CLI ------------------------------------------------------------------------------------------


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"baton {command}")
    parser.add_argument("--db", help="Database file (default: $BATON_DB, else the user data directory's baton.db).")
    if command == "backup":
        parser.add_argument("--to", help="Backup file or directory (default: <db dir>/backups/<name>-<stamp>.db).")
    elif command == "restore":
        parser.add_argument("path", help="The backup file to restore.")
        parser.add_argument("--force", action="store_true", help="Restore even while other processes hold the "
                                                                  "database (they see the restored content).")
    elif command == "prune":
        parser.add_argument("--older-than", required=True, help="Age of a session's last activity, e.g. 90d, 12w.")
        parser.add_argument("--project", help="Only this project's sessions.")
        parser.add_argument("--yes", action="store_true", help="Really delete (default: a dry run).")
    return parser


def main(command: str, argv: list[str]) -> int:
    args = _parser(command).parse_args(argv)
    exit_code = 0
    try:
        db = resolve_db_path(args.db)
        if command == "backup":
            to = Path(args.to).expanduser().resolve() if args.to else None
            if to is not None and args.to.endswith(("/", os.sep)):
                to.mkdir(parents=True, exist_ok=True)  # `--to DIR/` names a directory even before it exists
            result = backup(db, to)
        elif command == "restore":
            result = restore(db, Path(args.path).expanduser().resolve(), force=args.force)
        elif command == "check":
            result = check(db)
            exit_code = 0 if result["ok"] else 1
        elif command == "prune":
            result = prune(db, parse_age(args.older_than), project=args.project, apply=args.yes)
        else:
            result = vacuum(db)
    except BatonError as exc:
        print(json.dumps(exc.as_json()), file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return exit_code
