"""`baton import files DIR`: file-based task and session state (JSON or YAML) into Baton's tables.

The directory (e.g. `~/.claude/state/`, as a DevFlow-like tool keeps it) is searched recursively
for `*.json`, `*.yaml` and `*.yml`, in sorted path order. A file may hold:

- one **task** (an object with an `id` and task fields: `session`, `title`, `status`,
  `priority`, `tags`, `dependencies`, `data`, ...), or a list of tasks, or `{"tasks": [...]}`;
- one **session** (an object with `kind: session`, or `session_id`/`id` with `requirements`,
  `description` or `goal`), optionally with its tasks under `tasks`;
- YAML files may hold several documents (`---`); each document is read as above.

Mapping:
- session -> sessions: `session_id`/`id`, `project`, `mode`, `status` (aliases such as `done`,
  `in_progress`, `open` mapped), `requirements`/`description`/`goal`/`title`, `branch`,
  `created_at`/`updated_at`/`ended_at`; every other key goes to `metadata`.
- task -> task_groups: `id` -> group_id (characters Baton does not allow in a group id become `-`;
  the original id is kept in `metadata.source_id`), `title`/`name`/`summary` -> name, `status`
  mapped (todo/open/backlog -> pending, doing/wip/review -> in_progress, done/closed -> completed,
  failed/cancelled -> failed, blocked -> pending; the original in `metadata.source_status`),
  `assignee`/`assigned_to` -> assigned_to, `complexity` (1-10), `dependencies`/`depends_on` ->
  depends_on (ids of tasks of the same session; others are kept in
  `metadata.unresolved_dependencies`), and everything else (`priority`, `tags`, `data`, ...) ->
  `metadata`.
- A task names its session with `session`/`session_id`; else the file's session; else
  `--session`. A session named by tasks but described by no file is created (status active,
  requirements saying where it came from); an existing Baton session receives the tasks.
- Timestamps without a zone are read as UTC (said in the report); a task or session without one
  gets its file's modification time.

Every file is accounted for in the `files` row of the report, and every skipped file (unreadable,
malformed, not task or session state) is named in a note with the reason. Re-running imports
nothing twice (ledger operation `import-files`, keyed by session and task id).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from baton.clock import format_utc, utc_now
from baton.errors import InvalidInput, NotFound
from baton.transfer.common import (
    OUT_OF_RANGE,
    RESERVED_GROUP_IDS,
    Target,
    canonical_json,
    row_digest,
    valid_group_id,
    valid_session_id,
)
from baton.transfer.report import Report, TableReport

OPERATION = "import-files"
SUFFIXES = (".json", ".yaml", ".yml")
MAX_FILE_BYTES = 20 * 1024 * 1024

TASK_STATUS = {
    "pending": "pending", "todo": "pending", "to_do": "pending", "open": "pending", "new": "pending",
    "backlog": "pending", "queued": "pending", "not_started": "pending", "blocked": "pending",
    "in_progress": "in_progress", "doing": "in_progress", "active": "in_progress", "started": "in_progress",
    "wip": "in_progress", "working": "in_progress", "review": "in_progress", "in_review": "in_progress",
    "approved_pending_merge": "approved_pending_merge", "approved": "approved_pending_merge",
    "merging": "merging",
    "completed": "completed", "complete": "completed", "done": "completed", "closed": "completed",
    "resolved": "completed", "finished": "completed", "merged": "completed",
    "failed": "failed", "error": "failed", "cancelled": "failed", "canceled": "failed", "abandoned": "failed",
    "wontfix": "failed",
}
SESSION_STATUS = {
    "active": "active", "open": "active", "in_progress": "active", "running": "active", "started": "active",
    "paused": "paused", "on_hold": "paused", "blocked": "paused",
    "completed": "completed", "complete": "completed", "done": "completed", "closed": "completed",
    "finished": "completed",
    "failed": "failed", "error": "failed",
    "cancelled": "cancelled", "canceled": "cancelled", "abandoned": "cancelled",
}
TERMINAL = {"completed", "failed", "cancelled"}
TASK_KEYS = {"id", "task_id", "session", "session_id", "title", "name", "summary", "status", "assignee",
             "assigned_to", "owner", "complexity", "dependencies", "depends_on", "blocked_by", "created_at",
             "created", "updated_at", "updated", "kind", "type"}
SESSION_KEYS = {"id", "session_id", "project", "mode", "status", "requirements", "description", "goal", "title",
                "branch", "initial_branch", "created_at", "created", "updated_at", "updated", "ended_at",
                "completed_at", "tasks", "kind", "type"}
REQUIREMENT_KEYS = ("requirements", "description", "goal", "title")


@dataclass
class Item:
    """One task or session found in a file."""

    kind: str  # "task" or "session"
    data: dict[str, Any]
    path: Path
    mtime: str
    session: str | None = None  # the session of the file, for tasks listed inside a session file


@dataclass
class FileImport:
    root: Path
    target: Target
    report: Report
    default_session: str | None
    project: str | None
    files: TableReport = field(init=False)
    sessions: TableReport = field(init=False)
    tasks: TableReport = field(init=False)
    created_sessions: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.files = self.report.table("files", "-")
        self.sessions = self.report.table("sessions", "sessions")
        self.tasks = self.report.table("tasks", "task_groups")
        self.sessions.target_before = self.target.count("sessions")
        self.tasks.target_before = self.target.count("task_groups")

    # -- reading ----------------------------------------------------------------------------------

    def skip_file(self, path: Path, reason: str, detail: str = "") -> None:
        self.files.skip(reason)
        self.report.note(f"skipped {self.rel(path)}: {reason}{f' ({detail})' if detail else ''}")

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root if self.root.is_dir() else self.root.parent))
        except ValueError:
            return str(path)

    def read(self) -> list[Item]:
        paths = [self.root] if self.root.is_file() else sorted(
            p for p in self.root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
        items: list[Item] = []
        for path in paths:
            self.files.source_rows += 1
            found = self.read_file(path)
            if found:
                self.files.imported += 1
                items += found
        self.report.source_info["files"] = self.files.source_rows
        return items

    def read_file(self, path: Path) -> list[Item]:
        try:
            stat = path.stat()
            if stat.st_size > MAX_FILE_BYTES:
                self.skip_file(path, "too large", f"{stat.st_size} bytes, limit {MAX_FILE_BYTES}")
                return []
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            self.skip_file(path, "not UTF-8 text", str(exc))
            return []
        except OSError as exc:
            self.skip_file(path, "unreadable", exc.strerror or str(exc))
            return []
        mtime = format_utc(datetime.fromtimestamp(stat.st_mtime, UTC))
        if not text.strip():
            self.skip_file(path, "empty file")
            return []
        try:
            documents = self.parse(path, text)
        except ValueError as exc:
            self.skip_file(path, f"malformed {'JSON' if path.suffix.lower() == '.json' else 'YAML'}", str(exc))
            return []
        items: list[Item] = []
        for document in documents:
            items += self.classify(document, path, mtime)
        if not items:
            self.skip_file(path, "no task or session in it",
                           "expected an object with an id (a task or a session), a list of tasks, or {tasks: [...]}")
        return items

    @staticmethod
    def parse(path: Path, text: str) -> list[Any]:
        if path.suffix.lower() == ".json":
            try:
                return [json.loads(text)]
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            return [plain(d) for d in yaml.load_all(text, Loader=loader) if d is not None]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            raise ValueError(f"{where}{getattr(exc, 'problem', None) or exc}") from exc

    def classify(self, document: Any, path: Path, mtime: str) -> list[Item]:
        if isinstance(document, list):
            return [Item("task", t, path, mtime) for t in document if is_task(t)]
        if not isinstance(document, dict):
            return []
        kind = str(document.get("kind") or document.get("type") or "").lower()
        if kind == "session" or isinstance(document.get("tasks"), list) or (
                kind != "task" and looks_like_session(document)):
            session = dict(document)
            tasks = session.pop("tasks", None)
            sid = session_id_of(session)
            items = [Item("session", session, path, mtime)] if sid is not None or not tasks else []
            for task in tasks if isinstance(tasks, list) else []:
                if is_task(task):
                    items.append(Item("task", task, path, mtime, session=sid))
            return items
        return [Item("task", document, path, mtime)] if is_task(document) else []

    # -- writing ----------------------------------------------------------------------------------

    def run(self) -> Report:
        items = self.read()
        sessions = [i for i in items if i.kind == "session"]
        tasks = [i for i in items if i.kind == "task"]
        described: set[str] = set()
        for item in sessions:
            sid = self.import_session(item)
            if sid:
                described.add(sid)
        seen_tasks: dict[tuple[str, str], Path] = {}
        by_session: dict[str, list[tuple[Item, str]]] = {}
        for item in tasks:
            self.tasks.source_rows += 1
            sid = self.task_session(item)
            if sid is None:
                continue
            gid = group_id_for(task_id_of(item.data))
            if (sid, gid) in seen_tasks:
                self.tasks.skip("duplicate task id in the source (the first one is imported)")
                self.report.note(f"{self.rel(item.path)}: task {task_id_of(item.data)!r} of session {sid} repeats "
                                 f"the one in {self.rel(seen_tasks[(sid, gid)])}; skipped")
                continue
            seen_tasks[(sid, gid)] = item.path
            by_session.setdefault(sid, []).append((item, gid))
        for sid, entries in by_session.items():
            if not self.ensure_session(sid, entries[0][0]):
                for _ in entries:
                    self.tasks.skip("its session could not be created")
                continue
            ids = {gid for _, gid in entries} | self.existing_groups(sid)
            for item, gid in entries:
                self.import_task(sid, gid, item, ids)
        self.sessions.target_after = self.target.count("sessions")
        self.tasks.target_after = self.target.count("task_groups")
        return self.report

    def import_session(self, item: Item) -> str | None:
        data = item.data
        self.sessions.source_rows += 1
        raw = session_id_of(data)
        label = f"{self.rel(item.path)}: session {raw!r}"
        if not valid_session_id(raw):
            self.report.violation("sessions", label, "no valid session id (session_id or id)", "skipped")
            self.sessions.skip("invalid or missing session id")
            return None
        sid = str(raw)
        digest = row_digest(data)
        hit = self.target.ledger_get(OPERATION, sid, "session")
        if hit is not None:
            self.sessions.skip("already imported (same content)" if hit[0] == digest
                               else "already imported; changed in the file since, not overwritten")
            return sid
        if self.target.db.execute("SELECT 1 FROM sessions WHERE session_id = ?", (sid,)).fetchone():
            self.sessions.skip("a session with this id already exists in the target (not from this import)")
            return sid
        status_raw = str(data.get("status") or "active")
        status = SESSION_STATUS.get(norm(status_raw))
        metadata = {k: v for k, v in data.items() if k not in SESSION_KEYS}
        if status is None:
            self.report.violation("sessions", label, f"status {status_raw!r} has no Baton equivalent",
                                  "imported as active (original in metadata.source_status)")
            status = "active"
        if status != status_raw:
            metadata["source_status"] = status_raw
            self.sessions.adjusted[f"status {status_raw!r} -> {status!r}"] += 1
        mode = str(data.get("mode") or "simple")
        if mode not in ("simple", "parallel"):
            metadata["source_mode"] = mode
            self.sessions.adjusted[f"mode {mode!r} -> 'simple'"] += 1
            mode = "simple"
        requirements = next((data[k] for k in REQUIREMENT_KEYS if isinstance(data.get(k), str) and data[k].strip()),
                            None)
        if requirements is None:
            requirements = f"(imported from state file {self.rel(item.path)}; it states no requirements)"
            self.sessions.adjusted["no requirements/description: placeholder text"] += 1
        created = self.time(data, ("created_at", "created"), item, self.sessions) or item.mtime
        ended = self.time(data, ("ended_at", "completed_at"), item, self.sessions)
        if status in TERMINAL and ended is None:
            ended = self.time(data, ("updated_at", "updated"), item, self.sessions) or item.mtime
            self.sessions.adjusted["finished session without ended_at: last update time"] += 1
        elif status not in TERMINAL and ended is not None:
            metadata["source_ended_at"] = ended
            ended = None
        updated = self.time(data, ("updated_at", "updated"), item, self.sessions) or max(created, ended or created)
        metadata["files_import"] = {"file": self.rel(item.path)}
        branch = data.get("branch") or data.get("initial_branch")
        self.target.insert("sessions", {
            "session_id": sid, "project": data.get("project") if isinstance(data.get("project"), str) else self.project,
            "mode": mode, "status": status, "requirements": requirements,
            "initial_branch": branch if isinstance(branch, str) else None,
            "metadata": canonical_json(metadata), "created_at": created, "updated_at": updated, "ended_at": ended,
        })
        self.target.ledger_put(OPERATION, sid, "session", digest, {"table": "sessions", "id": sid,
                                                                  "file": self.rel(item.path)})
        self.sessions.imported += 1
        return sid

    def task_session(self, item: Item) -> str | None:
        data = item.data
        named = data.get("session") if data.get("session") is not None else data.get("session_id")
        if isinstance(named, dict):
            named = session_id_of(named)
        sid = named if named is not None else (item.session or self.default_session)
        label = f"{self.rel(item.path)}: task {task_id_of(data)!r}"
        if sid is None:
            self.tasks.skip("no session (the task names none; pass --session)")
            self.report.note(f"{label}: names no session and no --session was given; skipped")
            return None
        if not valid_session_id(sid):
            self.report.violation("task_groups", label, f"session {sid!r} is not a valid Baton session id", "skipped")
            self.tasks.skip("invalid session id")
            return None
        return str(sid)

    def ensure_session(self, sid: str, item: Item) -> bool:
        if self.target.db.execute("SELECT 1 FROM sessions WHERE session_id = ?", (sid,)).fetchone():
            return True
        now = utc_now()
        self.target.insert("sessions", {
            "session_id": sid, "project": self.project, "mode": "simple", "status": "active",
            "requirements": f"(session created by `baton import files` for the tasks in {self.root})",
            "metadata": canonical_json({"files_import": {"created_for_tasks": True}}),
            "created_at": item.mtime, "updated_at": max(item.mtime, now), "ended_at": None,
        })
        self.sessions.adjusted["session created for tasks that name it (no session file)"] += 1
        self.created_sessions.add(sid)
        return True

    def existing_groups(self, sid: str) -> set[str]:
        return {r[0] for r in self.target.db.execute("SELECT group_id FROM task_groups WHERE session_id = ?", (sid,))}

    def import_task(self, sid: str, gid: str, item: Item, ids: set[str]) -> None:
        data = item.data
        raw_id = task_id_of(data)
        label = f"{self.rel(item.path)}: task {raw_id!r}"
        digest = row_digest(data)
        hit = self.target.ledger_get(OPERATION, sid, f"task:{gid}")
        if hit is not None:
            self.tasks.skip("already imported (same content)" if hit[0] == digest
                            else "already imported; changed in the file since, not overwritten")
            return
        if self.target.db.execute("SELECT 1 FROM task_groups WHERE session_id = ? AND group_id = ?",
                                  (sid, gid)).fetchone():
            self.tasks.skip("a group with this id already exists in the target session (not from this import)")
            return
        metadata: dict[str, Any] = {k: v for k, v in data.items() if k not in TASK_KEYS}
        if gid != raw_id:
            metadata["source_id"] = raw_id
            self.tasks.adjusted["task id adapted to a Baton group id (original in metadata.source_id)"] += 1
        status_raw = str(data.get("status") or "pending")
        status = TASK_STATUS.get(norm(status_raw))
        if status is None:
            self.report.violation("task_groups", label, f"status {status_raw!r} has no Baton equivalent",
                                  "imported as pending (original in metadata.source_status)")
            status = "pending"
        if status != status_raw:
            metadata["source_status"] = status_raw
            self.tasks.adjusted[f"status {status_raw!r} -> {status!r}"] += 1
        name = next((data[k] for k in ("title", "name", "summary") if isinstance(data.get(k), str) and data[k].strip()),
                    None)
        if name is None:
            name = f"Task {raw_id}"
            self.tasks.adjusted["no title: 'Task <id>'"] += 1
        complexity = data.get("complexity")
        if complexity is not None and (not isinstance(complexity, int) or isinstance(complexity, bool)
                                       or not 1 <= complexity <= 10):
            self.report.violation("task_groups", label, f"complexity {complexity!r} not in 1-10",
                                  "imported as NULL (original in metadata.complexity)")
            metadata["complexity"] = complexity
            complexity = None
        depends_on, unresolved = self.dependencies(data, gid, ids)
        if unresolved:
            metadata["unresolved_dependencies"] = unresolved
            self.tasks.adjusted["dependency on a task not in the session: kept in metadata"] += 1
        assignee = next((data[k] for k in ("assigned_to", "assignee", "owner") if isinstance(data.get(k), str)), None)
        created = self.time(data, ("created_at", "created"), item, self.tasks) or item.mtime
        updated = self.time(data, ("updated_at", "updated"), item, self.tasks) or created
        metadata["files_import"] = {"file": self.rel(item.path)}
        self.target.insert("task_groups", {
            "session_id": sid, "group_id": gid, "name": name, "status": status, "assigned_to": assignee,
            "complexity": complexity, "depends_on": canonical_json(depends_on), "metadata": canonical_json(metadata),
            "created_at": created, "updated_at": max(created, updated),
        })
        for key in ("priority", "tags", "data"):
            if key in data:
                self.tasks.adjusted[f"{key} -> metadata"] += 1
        self.target.ledger_put(OPERATION, sid, f"task:{gid}", digest,
                               {"table": "task_groups", "id": gid, "file": self.rel(item.path)})
        self.tasks.imported += 1

    def dependencies(self, data: dict[str, Any], gid: str, ids: set[str]) -> tuple[list[str], list[Any]]:
        raw: Any = next((data[k] for k in ("dependencies", "depends_on", "blocked_by") if k in data), [])
        if isinstance(raw, str | int):
            raw = [raw]
        if not isinstance(raw, list):
            return [], [raw]
        found: list[str] = []
        unresolved: list[Any] = []
        for dep in raw:
            dep_id = dep.get("id") if isinstance(dep, dict) else dep
            mapped = group_id_for(str(dep_id)) if isinstance(dep_id, str | int) else None
            if mapped is not None and mapped in ids and mapped != gid:
                if mapped not in found:
                    found.append(mapped)
            else:
                unresolved.append(dep)
        return found, unresolved

    def time(self, data: dict[str, Any], keys: tuple[str, ...], item: Item, t: TableReport) -> str | None:
        for key in keys:
            value = data.get(key)
            if value is None:
                continue
            try:
                moment = parse_moment(value)
                text = format_utc(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))
            except ValueError:
                self.report.note(f"{self.rel(item.path)}: {key} {value!r} is not a timestamp; not used")
                t.adjusted[f"{key} not a timestamp: ignored"] += 1
                continue
            except OverflowError:
                self.report.note(f"{self.rel(item.path)}: {key} {value!r} {OUT_OF_RANGE}; not used")
                t.adjusted[f"{key} {OUT_OF_RANGE}: ignored"] += 1
                continue
            if moment.tzinfo is None:
                t.adjusted[f"{key} without a time zone read as UTC"] += 1
            return text
        return None


# -- helpers ----------------------------------------------------------------------------------------


def norm(text: str) -> str:
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def plain(value: Any) -> Any:
    """YAML values as JSON values (dates become ISO strings, keys strings)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def parse_moment(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value != value:  # NaN (JSON and YAML both have it)
            raise ValueError(value)
        try:
            return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
        except (OverflowError, OSError, ValueError) as exc:  # past the calendar, or the platform's time_t
            raise OverflowError(value) from exc
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.strip().replace("Z", "+00:00")
    if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        text += "T00:00:00"
    return datetime.fromisoformat(text)


def task_id_of(data: dict[str, Any]) -> str:
    value = data.get("id", data.get("task_id"))
    return str(value) if value is not None else ""


def session_id_of(data: dict[str, Any]) -> str | None:
    value = data.get("session_id", data.get("id"))
    return value if isinstance(value, str) else None


def is_task(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    task_id = value.get("id", value.get("task_id"))
    return isinstance(task_id, str | int) and not isinstance(task_id, bool) and str(task_id).strip() != ""


def looks_like_session(data: dict[str, Any]) -> bool:
    if "session_id" in data and "session" not in data and not any(
            k in data for k in ("title", "dependencies", "depends_on", "priority")):
        return True
    return "id" in data and any(k in data for k in ("requirements", "goal")) and "session" not in data


def group_id_for(raw: str) -> str:
    """A Baton group id for a task id: allowed characters kept, others `-`, at most 64, not reserved."""
    if valid_group_id(raw):
        return raw
    text = re.sub(r"[^A-Za-z0-9_-]+", "-", raw.strip()).strip("-") or "task"
    if text.lower() in RESERVED_GROUP_IDS:
        text = f"task-{text}"
    if len(text) > 64 or text != raw:
        import hashlib

        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        text = f"{text[:55]}-{digest}"  # distinct originals never collide on the same adapted id
    return text


def run_import_files(db: Path, args: Any) -> Report:
    """`baton import files DIR`: every task and session file, one transaction on the target."""
    from baton.transfer.cli import finish

    root = Path(args.path).expanduser()
    if not root.exists():
        raise NotFound(f"{root} does not exist")
    if args.session is not None and not valid_session_id(args.session):
        raise InvalidInput(f"--session {args.session!r} is not a valid session id")
    report = Report("import files", str(root), str(db), args.dry_run)
    report.source_info["kind"] = "files"
    with Target(db, dry_run=args.dry_run) as target:
        FileImport(root.resolve(), target, report, args.session, args.project).run()
        return finish(report, target, strict=args.strict)
