"""Where the database lives: `--db`, else `BATON_DB`, else the OS user data directory.

Never relative to the working directory: MCP clients start servers in unpredictable cwds.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "BATON_DB"


def default_db_path() -> Path:
    import platformdirs  # imported here: only needed when neither --db nor BATON_DB is given

    return Path(platformdirs.user_data_dir("baton", appauthor=False)) / "baton.db"


def resolve_db_path(flag: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the one database path (flag, env var, user data dir) to an absolute path."""
    raw = flag if flag not in (None, "") else os.environ.get(ENV_VAR) or None
    path = Path(raw).expanduser() if raw is not None else default_db_path()
    return path.resolve()
