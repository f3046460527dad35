"""Where the database lives: `--db`, else `BATON_DB`, else the OS user data directory.

Never relative to the working directory: MCP clients start servers in unpredictable cwds.
Only the default location is created with its directories: an explicit path whose directory does
not exist is a typo far more often than a wish, and agents that silently got a fresh database of
their own would no longer share state.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from baton.errors import InvalidInput

ENV_VAR = "BATON_DB"


def default_db_path() -> Path:
    import platformdirs  # imported here: only needed when neither --db nor BATON_DB is given

    return Path(platformdirs.user_data_dir("baton", appauthor=False)) / "baton.db"


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def resolve_db_path(flag: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the one database path (flag, env var, user data dir) to an absolute path.

    An explicit path (flag or env var) must be a file path in an existing directory."""
    from_flag = flag not in (None, "")
    raw = flag if from_flag else os.environ.get(ENV_VAR) or None
    if raw is None:
        return default_db_path().resolve()
    source = "--db" if from_flag else ENV_VAR
    if _URL.match(os.fspath(raw)):
        scheme = os.fspath(raw).split("://", 1)[0]
        raise InvalidInput(f"{source} is a {scheme}:// URL; Baton's database is a SQLite file path")
    path = Path(raw).expanduser().resolve()
    if not path.parent.exists():  # (a file where the directory should be is a storage error, later)
        raise InvalidInput(
            f"{source} names {path}, but its directory {path.parent} does not exist; create it first or fix the "
            "path (Baton creates directories only for its default location)"
        )
    return path
