"""`baton doctor`: is this installation, its database and the clients' configuration in order?

Read-only throughout. The database is opened `mode=ro`, or `immutable=1` when it is in WAL mode
and no `-wal` file is beside it (a `mode=ro` reader would create the `-wal`/`-shm` pair); every
file found by `--find-databases` is opened `immutable=1`, so a copy checked out of version control
or lying in a backup directory keeps every byte and gets nothing new beside it.

Exit 0 when nothing needs doing, 1 with each problem and what to do about it. Warnings (e.g. no
`baton` on PATH, which absolute-path configurations do not need) do not change the exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from baton import __version__
from baton.client_config import baton_command
from baton.errors import BatonError
from baton.migrations import latest_version, not_batons
from baton.paths import resolve_db_path

SQLITE_HEADER = b"SQLite format 3\x00"
SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache"}
MAX_DEPTH = 6
NEWEST_SHOWN = 5


class Report:
    def __init__(self) -> None:
        self.problems: list[dict[str, str]] = []
        self.warnings: list[dict[str, str]] = []

    def problem(self, what: str, fix: str) -> None:
        self.problems.append({"problem": what, "fix": fix})

    def warn(self, what: str, fix: str) -> None:
        self.warnings.append({"warning": what, "fix": fix})


# -- install --------------------------------------------------------------------------------------


def check_install(report: Report) -> dict[str, Any]:
    command = baton_command()
    script = command[0] if len(command) == 1 else None
    on_path = shutil.which("baton")
    same = on_path is not None and script is not None and Path(on_path).resolve() == Path(script).resolve()
    if on_path is None:
        report.warn("no `baton` on PATH", "configure clients with the absolute command `baton config CLIENT` prints")
    elif not same:
        report.warn(f"the `baton` on PATH ({on_path}) is not this installation",
                    "a client whose command is plain `baton` runs that one: use `baton config CLIENT`'s absolute path")
    return {"version": __version__, "python": sys.executable, "python_version": sys.version.split()[0],
            "command": command, "baton_on_path": on_path, "on_path_is_this_one": same}


# -- databases ------------------------------------------------------------------------------------


def is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(16) == SQLITE_HEADER
    except OSError:
        return False


def _header_is_wal(path: Path) -> bool:
    with path.open("rb") as handle:
        header = handle.read(20)
    return len(header) == 20 and header[18] == 2


def open_read_only(path: Path, *, immutable: bool) -> sqlite3.Connection:
    mode = "immutable=1" if immutable else "mode=ro"
    return sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, isolation_level=None)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}


def classify(conn: sqlite3.Connection) -> tuple[str, str | None]:
    """("baton" | "bazinga" | "empty" | "other", why it is not Baton's)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    foreign = not_batons(conn)
    if foreign is None:
        return ("baton" if version > 0 else "empty"), None
    tables = _tables(conn)
    if {"schema_version", "sessions"} <= tables:
        return "bazinga", foreign
    return "other", foreign


def sessions_of(conn: sqlite3.Connection, kind: str) -> dict[str, Any]:
    # Baton lists sessions newest first by rowid; BAZINGA's ids carry their start time.
    count = int(conn.execute("SELECT count(*) FROM sessions").fetchone()[0])
    query = f"SELECT session_id FROM sessions ORDER BY {{}} LIMIT {NEWEST_SHOWN}"
    try:
        newest = [r[0] for r in conn.execute(query.format("rowid DESC" if kind == "baton" else "start_time DESC"))]
    except sqlite3.OperationalError:  # a BAZINGA schema without start_time
        newest = [r[0] for r in conn.execute(query.format("rowid DESC"))]
    return {"count": count, "newest": newest}


def check_database(report: Report, flag: str | None) -> dict[str, Any]:
    try:
        path = resolve_db_path(flag)
    except BatonError as exc:
        report.problem(exc.message, "fix --db or BATON_DB")
        return {"path": None}
    info: dict[str, Any] = {"path": str(path), "exists": path.is_file()}
    if not path.is_file():
        info["note"] = "no database yet: `baton serve` or the first write creates it"
        return info
    wal = _header_is_wal(path)
    info["journal_mode"] = "wal" if wal else "rollback"
    try:
        conn = open_read_only(path, immutable=wal and not Path(f"{path}-wal").exists())
        try:
            kind, foreign = classify(conn)
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            info.update(kind=kind, schema_version=version, latest_schema_version=latest_version())
            if kind == "baton":
                info["sessions"] = sessions_of(conn, kind)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        report.problem(f"{path} cannot be read as SQLite ({exc})",
                       "move it aside or point --db/BATON_DB at another file; `baton check` says more")
        return info
    info["is_batons"] = kind in ("baton", "empty")
    if foreign is not None:
        hint = f"`baton merge {path}` into a Baton database" if kind == "bazinga" else "point --db/BATON_DB elsewhere"
        report.problem(f"{path} is not a Baton database ({kind}): {foreign}", hint)
    elif version > latest_version():
        report.problem(f"{path} has schema {version}, newer than this Baton ({latest_version()})",
                       "upgrade Baton (an older one refuses a newer database)")
    if not wal and kind == "baton":
        report.warn(f"{path} is not in WAL mode", "`baton serve` switches it; readers then stop blocking writers")
    return info


def _walk(root: Path, depth: int = 0) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if entry.name not in SKIP_DIRS and depth < MAX_DEPTH:
                yield from _walk(Path(entry.path), depth + 1)
        elif entry.is_file() and not entry.name.endswith(("-wal", "-shm", "-journal")):
            yield Path(entry.path)


def find_databases(roots: list[Path], current: str | None) -> list[dict[str, Any]]:
    found = []
    for root in roots:
        for path in _walk(root):
            if not is_sqlite(path):
                continue
            entry: dict[str, Any] = {"path": str(path.resolve()), "is_current": str(path.resolve()) == current}
            if Path(f"{path}-wal").exists():
                entry["note"] = "a -wal file is beside it: read as of the main file; the live server may hold more"
            try:
                conn = open_read_only(path, immutable=True)
                try:
                    kind, _ = classify(conn)
                    entry["kind"] = kind
                    if kind in ("baton", "bazinga"):
                        entry["sessions"] = sessions_of(conn, kind)
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                entry.update(kind="unreadable", error=str(exc))
            if entry["kind"] in ("baton", "bazinga") and not entry["is_current"]:
                entry["merge"] = f"baton merge {path.resolve()}"
            found.append(entry)
    return found


# -- client configurations ------------------------------------------------------------------------


def config_files() -> list[tuple[Path, str]]:
    """(file, key of its servers object) for every place a client looks that exists here."""
    home = Path.home()
    if sys.platform == "darwin":
        user_code = home / "Library" / "Application Support" / "Code" / "User" / "mcp.json"
    elif os.name == "nt":
        user_code = Path(os.environ.get("APPDATA", home)) / "Code" / "User" / "mcp.json"
    else:
        user_code = Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "Code" / "User" / "mcp.json"
    cwd = Path.cwd()
    candidates = [(cwd / ".vscode" / "mcp.json", "servers"), (cwd / ".mcp.json", "mcpServers"),
                  (home / ".claude.json", "mcpServers"), (user_code, "servers")]
    return [(path, key) for path, key in candidates if path.is_file()]


def _servers(data: Any, key: str) -> list[tuple[str, Any]]:
    """("where", server) for each `baton` server; ~/.claude.json also keeps one list per project."""
    found = []
    if isinstance(data, dict):
        if isinstance(data.get(key), dict) and "baton" in data[key]:
            found.append(("", data[key]["baton"]))
        for project, settings in (data.get("projects") or {}).items() if isinstance(data.get("projects"), dict) else []:
            if isinstance(settings, dict) and isinstance(settings.get(key), dict) and "baton" in settings[key]:
                found.append((project, settings[key]["baton"]))
    return found


def _command_exists(command: str, base: Path) -> str | None:
    command = command.replace("${workspaceFolder}", str(base))
    if os.sep in command or "/" in command:
        path = Path(command).expanduser()
        path = path if path.is_absolute() else base / path
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(command)


def check_client_configs(report: Report) -> list[dict[str, Any]]:
    results = []
    for path, key in config_files():
        entry: dict[str, Any] = {"file": str(path)}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            # VS Code accepts comments in its files; plain json does not, so this is not the user's mistake.
            entry["unchecked"] = f"not plain JSON ({exc})"
            results.append(entry)
            continue
        base = path.parent.parent if path.parent.name == ".vscode" else path.parent
        servers = []
        for project, server in _servers(data, key):
            where = f"{path}" + (f" (project {project})" if project else "")
            item: dict[str, Any] = {"project": project or None}
            if not isinstance(server, dict):
                report.problem(f"{where}: the baton server is not an object", "replace it with `baton config` output")
            elif "url" in server:
                item["url"] = server["url"]
            else:
                command = str(server.get("command", ""))
                resolved = _command_exists(command, Path(project) if project else base) if command else None
                item.update(command=command, args=server.get("args"), command_found=resolved)
                if resolved is None:
                    report.problem(f"{where}: the baton server's command {command!r} is not found or not executable",
                                   "use the absolute command `baton config CLIENT` prints")
            servers.append(item)
        entry["baton_servers"] = servers
        results.append(entry)
    return results


# -- the command ----------------------------------------------------------------------------------


def doctor(db_flag: str | None, roots: list[Path] | None) -> dict[str, Any]:
    report = Report()
    result: dict[str, Any] = {"install": check_install(report), "database": check_database(report, db_flag),
                              "clients": check_client_configs(report)}
    if not any(entry.get("baton_servers") for entry in result["clients"]):
        report.warn("no client configuration with a `baton` server was found here",
                    "`baton config claude-code|vscode|copilot` prints one")
    if roots is not None:
        result["found_databases"] = find_databases(roots, result["database"].get("path"))
    result.update(ok=not report.problems, problems=report.problems, warnings=report.warnings)
    return result


def render(result: dict[str, Any]) -> str:
    install, db = result["install"], result["database"]
    lines = [f"baton {install['version']} (python {install['python_version']}: {install['python']})",
             f"  command: {' '.join(install['command'])}",
             f"  baton on PATH: {install['baton_on_path'] or 'none'}"
             + (" (this one)" if install["on_path_is_this_one"] else ""),
             f"database: {db.get('path')}"]
    if db.get("exists"):
        lines.append(f"  {db.get('kind')}, schema {db.get('schema_version')} of {db.get('latest_schema_version')}, "
                     f"journal {db.get('journal_mode')}"
                     + (f", {db['sessions']['count']} sessions" if "sessions" in db else ""))
    elif db.get("note"):
        lines.append(f"  {db['note']}")
    for entry in result["clients"]:
        servers = entry.get("baton_servers")
        state = entry.get("unchecked") or (f"{len(servers)} baton server(s)" if servers else "no baton server")
        lines.append(f"client config: {entry['file']}: {state}")
        for server in servers or []:
            target = server.get("url") or f"{server.get('command')} -> {server.get('command_found') or 'NOT FOUND'}"
            lines.append(f"  {server.get('project') or ''} {target}".rstrip())
    for found in result.get("found_databases", []):
        sessions = found.get("sessions")
        detail = f"{sessions['count']} sessions, newest {', '.join(sessions['newest']) or '-'}" if sessions else ""
        lines.append(f"found {found['kind']}: {found['path']}" + (f" ({detail})" if detail else "")
                     + (" [current]" if found["is_current"] else ""))
        if "merge" in found:
            lines.append(f"  to merge: {found['merge']}")
    for warning in result["warnings"]:
        lines.append(f"warning: {warning['warning']}; {warning['fix']}")
    for problem in result["problems"]:
        lines.append(f"PROBLEM: {problem['problem']}; {problem['fix']}")
    lines.append("ok" if result["ok"] else f"{len(result['problems'])} problem(s)")
    return "\n".join(lines)


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"baton {command}", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--db", help="Database file (default: $BATON_DB, else the user data directory's baton.db).")
    parser.add_argument("--find-databases", nargs="+", metavar="DIR", type=Path,
                        help=f"Also list the Baton and BAZINGA databases under these directories (depth {MAX_DEPTH}).")
    parser.add_argument("--json", action="store_true", help="One JSON object instead of text.")
    return parser


def main(command: str, argv: list[str]) -> int:
    args = _parser(command).parse_args(argv)
    result = doctor(args.db, args.find_databases)
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else render(result))
    return 0 if result["ok"] else 1
