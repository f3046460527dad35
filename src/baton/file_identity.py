"""Is the database file at the path still the one the store has open?

SQLite goes on using the file it opened. Deleted or replaced under a running server (`rm`, `mv`
or `cp` of another file over it, a `git checkout`), the server would write on into the orphaned
inode and every write it acknowledged would vanish when the process ends; with the `-wal` file
deleted, so would every acknowledged write not yet checkpointed into the database. So the store
records (st_dev, st_ino) of both at open and compares them before each commit and each read, and
so does the server every 0.5 s between calls (`Store.watch_files`: a loss must not wait for a call,
since a SIGKILL meanwhile would lose the deleted -wal, and another process opening a file moved
over the database would read this server's -wal into it). On a difference `rescue` keeps what can
be kept, once, and the store refuses everything after.

SQLite itself never replaces either file while a connection is open: it resets and truncates the
`-wal` in place, and deletes it only when the last connection to the database closes. The store
keeps its connections open until it closes, and other processes (a CLI command, a backup, a
vacuum) opening and closing the database leave the `-wal` alone while it does.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import aiosqlite

from baton.clock import utc_now

log = logging.getLogger(__name__)

FileId = tuple[int, int]
_STAMP = str.maketrans("", "", "-:.")  # 2026-11-22T05:42:55.123Z -> 20261122T054255123Z, as backups are named


class Loss(Enum):
    DB_DELETED = "was deleted"
    DB_REPLACED = "was replaced by another file"
    WAL_DELETED = "-wal was deleted"
    WAL_REPLACED = "-wal was replaced by another file"

    @property
    def db_file_gone(self) -> bool:
        """True when the file at the path is not this server's database any more (not just its -wal)."""
        return self in (Loss.DB_DELETED, Loss.DB_REPLACED)


def file_id(path: str) -> FileId | None:
    """(st_dev, st_ino) of the file at `path`, None when there is none (other OSErrors propagate)."""
    try:
        stat = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stat.st_dev, stat.st_ino


@dataclass
class OpenedFiles:
    """The identity of a database and its -wal as they were when the store opened them."""

    db: str
    wal: str
    db_id: FileId | None
    wal_id: FileId | None

    @classmethod
    def record(cls, db: Path) -> OpenedFiles:
        path = str(db)
        return cls(path, path + "-wal", file_id(path), file_id(path + "-wal"))

    def loss(self) -> Loss | None:
        """What happened to the files since they were recorded; None if they are still the same.

        Two stat calls, next to nothing beside a statement's round trip to aiosqlite's thread: it runs
        before every commit and every read.
        """
        try:
            now = file_id(self.db)
            if now is None or now != self.db_id:
                return Loss.DB_DELETED if now is None else Loss.DB_REPLACED
            wal = file_id(self.wal)
        except OSError:
            return None  # cannot tell (a directory without search permission): SQLite reports its own error
        if self.wal_id is None:
            # Not in WAL mode (a network filesystem), or no -wal yet when recorded: the first one seen is it.
            self.wal_id = wal
        elif wal != self.wal_id:
            return Loss.WAL_DELETED if wal is None else Loss.WAL_REPLACED
        return None


async def rescue(conn: aiosqlite.Connection, path: Path, loss: Loss) -> str:
    """Keep what was written through `conn` (the store's writer, outside a transaction) after `loss`.

    Returns what happened and what to do, for every later refusal.
    """
    try:
        # Into the database file `conn` has open: the one at the path if only the -wal went. This also empties
        # the -wal, so a database that now sits at the path cannot read this one's pages out of it.
        rows = list(await conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)"))
        checkpointed = bool(rows) and rows[0][0] == 0
    except sqlite3.Error as exc:
        log.error("checkpoint of %s after losing its files failed: %s", path, exc)
        checkpointed = False
    saved: Path | None = None
    if loss.db_file_gone:
        saved = path.with_name(f"{path.name}.rescued-{utc_now().translate(_STAMP)}")
        try:
            await conn.execute("VACUUM INTO ?", (str(saved),))
        except sqlite3.Error as exc:
            log.error("could not save %s's open database to %s: %s", path, saved, exc)
            saved = None
    what = (f"{path} {loss.value} while this server had it open" if loss.db_file_gone
            else f"{path}{loss.value} while this server had the database open")
    if saved is not None:
        kept = (f"everything this server wrote to it is saved in {saved}; to keep using that data, stop the "
                f"server, move {saved.name} to {path.name}, then start it again")
    elif loss.db_file_gone:
        kept = ("saving a copy of what this server wrote to it failed (see the server's log); restore a backup "
                "with `baton restore`, then restart the server")
    elif checkpointed:
        kept = f"every write it acknowledged was checkpointed into {path}, which is complete; restart the server"
    else:
        kept = (f"the checkpoint into {path} could not finish (another process held a read open), so recent "
                "writes may be missing from it; stop every process using it, then restart the server")
    return f"{what}; this server refuses every read and write from now on, this one included: {kept}"
