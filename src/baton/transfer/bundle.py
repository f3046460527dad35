"""Session bundles: `baton export`, `baton import bundle`, `baton sync DIR [--watch]`.

A bundle is one human-readable JSON file per session, `<dir>/<session_id>/state.json`:

    {
      "format": "baton-session-bundle",
      "format_version": 1,
      "session": {...},            # the Session fields, metadata as an object
      "task_groups": [...],        # oldest first; JSON columns as JSON values
      "success_criteria": [...],
      "logs": [...],               # interactions, reasoning and events, in log order
      "state_snapshots": [...],    # every saved version
      "token_usage": [...],
      # format 2 adds the session's full-profile rows (and task_groups[].metadata):
      "context_packages": [...],   # each with its "consumers"; "supersedes" = index in this list
      "context_consumption": [...],  # "package" = index in context_packages
      "skill_outputs": [...],      # "output" as a JSON value
      "development_plan": {... "phases": [...]} or null
    }

Database-local surrogate ids (log_id, criterion_id, snapshot_id, usage_id) are not written: the
order of each list is the order of the rows, so a bundle imported into any database and
exported again is byte-for-byte the same file. Nothing volatile (export time, host) is written.
Format 1 bundles (core rows only) are still read: `import bundle --replace` and `sync` of a
format-1 bundle replace the core rows and leave the session's full-profile rows untouched; a
format-2 bundle replaces those too. Project-level learning (error patterns, strategies) is not
session state and is not in a bundle.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from baton.errors import InvalidInput, NotFound
from baton.transfer.common import Target, canonical_json, table_columns, valid_session_id
from baton.transfer.report import Report
from baton.transfer.same_session import extends

FORMAT = "baton-session-bundle"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
SESSION_COLUMNS = ("session_id", "project", "mode", "status", "status_reason", "requirements", "initial_branch",
                   "metadata", "created_at", "updated_at", "ended_at", "completion_forced")
# table -> (order column, columns written, JSON columns)
CHILDREN: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "task_groups": ("seq", (
        "group_id", "name", "status", "assigned_to", "complexity", "initial_tier", "specializations", "item_count",
        "component_path", "security_sensitive", "depends_on", "review_status", "merge_status", "feature_branch",
        "revision_count", "qa_attempts", "tl_review_attempts", "review_iteration", "no_progress_count",
        "blocking_issues_count", "metadata", "forced_start", "created_at", "updated_at"),
        ("specializations", "depends_on", "metadata", "forced_start")),
    "success_criteria": ("criterion_id", (
        "criterion", "status", "actual", "evidence", "required_for_completion", "created_at", "updated_at"), ()),
    "logs": ("log_id", (
        "log_type", "agent_type", "agent_id", "group_id", "iteration", "phase", "confidence", "refs", "event_type",
        "payload", "content", "content_length", "redacted", "after_end", "timestamp"), ("refs", "payload")),
    "state_snapshots": ("snapshot_id", ("state_type", "group_id", "version", "state", "saved_at"), ("state",)),
    "token_usage": ("usage_id", (
        "agent_type", "agent_id", "group_id", "model", "input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "after_end", "timestamp"), ()),
}

PACKAGE_COLUMNS = ("group_id", "package_type", "priority", "producer", "summary", "content", "file_path", "size_bytes",
                   "version", "supersedes", "redacted", "created_at")
CONSUMER_COLUMNS = ("agent_type", "consumed_at", "consumed_by", "iteration")
CONSUMPTION_COLUMNS = ("package_id", "agent_type", "agent_id", "group_id", "iteration", "tokens", "consumed_at")
SKILL_COLUMNS = ("skill_name", "agent_type", "group_id", "iteration", "output", "redacted", "created_at")
PHASE_COLUMNS = ("phase_number", "name", "description", "status", "notes", "updated_by", "started_at", "completed_at",
                 "updated_at")
# report rows of the full-profile part (format 2)
DOMAIN_TABLES = ("context_packages", "context_package_consumers", "context_consumption", "skill_outputs",
                 "development_plans", "plan_phases")


def _has_domain(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_schema WHERE name = 'context_packages'").fetchone() is not None


# Columns added by later migrations, as a source database with an older schema (merge reads it
# unmigrated) exports them: the column's default.
LATER_COLUMNS = {("task_groups", "metadata"): "'{}'", ("context_package_consumers", "iteration"): "NULL",
                 ("sessions", "completion_forced"): "0", ("task_groups", "forced_start"): "NULL",
                 ("logs", "after_end"): "0", ("token_usage", "after_end"): "0"}
# Columns of migration 0007, written only when they differ from their default: a bundle of a session
# that never used them is the same file as before, and reading one without them gives the default.
WHEN_SET = {("sessions", "completion_forced"): 0, ("task_groups", "forced_start"): None,
            ("logs", "after_end"): 0, ("token_usage", "after_end"): 0}


def _drop_defaults(table: str, item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if (table, k) not in WHEN_SET or v != WHEN_SET[(table, k)]}


def _default(table: str, column: str) -> Any:
    return WHEN_SET.get((table, column))


def _select(conn: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> str:
    present = set(table_columns(conn, table))
    return ", ".join(c if c in present else f"{LATER_COLUMNS.get((table, c), 'NULL')} AS {c}" for c in columns)


def export_domain(conn: sqlite3.Connection, session_id: str) -> dict[str, Any]:
    packages = [dict(r) for r in conn.execute(
        f"SELECT package_id, {', '.join(PACKAGE_COLUMNS)} FROM context_packages WHERE session_id = ?"
        " ORDER BY package_id", (session_id,))]
    index = {p["package_id"]: i for i, p in enumerate(packages)}
    for package in packages:
        package["supersedes"] = index.get(package["supersedes"]) if package["supersedes"] is not None else None
        package["consumers"] = [dict(r) for r in conn.execute(
            f"SELECT {_select(conn, 'context_package_consumers', CONSUMER_COLUMNS)} FROM context_package_consumers"
            " WHERE package_id = ?"
            " ORDER BY agent_type", (package.pop("package_id"),))]
    consumption = []
    for row in conn.execute(f"SELECT {', '.join(CONSUMPTION_COLUMNS)} FROM context_consumption WHERE session_id = ?"
                            " ORDER BY consumption_id", (session_id,)):
        item = dict(row)
        item = {"package": index.get(item.pop("package_id")), **item}
        consumption.append(item)
    skills = []
    for row in conn.execute(f"SELECT {', '.join(SKILL_COLUMNS)} FROM skill_outputs WHERE session_id = ?"
                            " ORDER BY output_id", (session_id,)):
        item = dict(row)
        item["output"] = json.loads(item["output"])
        skills.append(item)
    plan_row = conn.execute("SELECT plan_id, original_prompt, plan_text, metadata, created_at, updated_at"
                            " FROM development_plans WHERE session_id = ?", (session_id,)).fetchone()
    plan: dict[str, Any] | None = None
    if plan_row is not None:
        plan = dict(plan_row)
        plan["metadata"] = json.loads(plan["metadata"])
        plan["phases"] = [dict(r) for r in conn.execute(
            f"SELECT {', '.join(PHASE_COLUMNS)} FROM plan_phases WHERE plan_id = ? ORDER BY phase_number",
            (plan.pop("plan_id"),))]
    return {"context_packages": packages, "context_consumption": consumption, "skill_outputs": skills,
            "development_plan": plan}


def domain_counts(bundle: dict[str, Any]) -> dict[str, int]:
    packages = bundle.get("context_packages") or []
    plan = bundle.get("development_plan")
    return {
        "context_packages": len(packages),
        "context_package_consumers": sum(len(p.get("consumers") or []) for p in packages if isinstance(p, dict)),
        "context_consumption": len(bundle.get("context_consumption") or []),
        "skill_outputs": len(bundle.get("skill_outputs") or []),
        "development_plans": 1 if plan else 0,
        "plan_phases": len(plan.get("phases") or []) if isinstance(plan, dict) else 0,
    }


def row_counts(bundle: dict[str, Any]) -> dict[str, int]:
    counts = {"sessions": 1, **{t: len(bundle.get(t, [])) for t in CHILDREN}}
    if bundle.get("format_version") == 2:
        counts.update(domain_counts(bundle))
    return counts


# -- export ---------------------------------------------------------------------------------------


def export_session(conn: sqlite3.Connection, session_id: str) -> dict[str, Any]:
    conn.row_factory = sqlite3.Row
    row = conn.execute(f"SELECT {_select(conn, 'sessions', SESSION_COLUMNS)} FROM sessions WHERE session_id = ?",
                       (session_id,)).fetchone()
    if row is None:
        raise NotFound(f"session {session_id!r} does not exist")
    session = _drop_defaults("sessions", dict(row))
    session["metadata"] = json.loads(session["metadata"])
    bundle: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "session": session}
    for table, (order, columns, json_columns) in CHILDREN.items():
        items = []
        for child in conn.execute(f"SELECT {_select(conn, table, columns)} FROM {table} WHERE session_id = ?"
                                  f" ORDER BY {order}", (session_id,)):
            item = _drop_defaults(table, dict(child))
            for column in json_columns:
                if item.get(column) is not None:
                    item[column] = json.loads(item[column])
            items.append(item)
        bundle[table] = items
    if _has_domain(conn):
        bundle.update(export_domain(conn, session_id))
    return bundle


def dumps(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"


def _read_connection(db: Path) -> sqlite3.Connection:
    if not db.exists():
        raise NotFound(f"{db} does not exist")
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def run_export(db: Path, args: Any) -> int:
    conn = _read_connection(db)
    try:
        conn.execute("BEGIN")  # every session from one consistent snapshot
        ids = list(args.sessions)
        if args.all:
            sql, params = "SELECT session_id FROM sessions", tuple[str, ...]()
            if args.project:
                sql, params = sql + " WHERE project = ?", (args.project,)
            ids += [r[0] for r in conn.execute(sql + " ORDER BY rowid", params) if r[0] not in ids]
        if not ids:
            raise InvalidInput("name at least one SESSION, or --all")
        bundles = [(sid, dumps(export_session(conn, sid))) for sid in ids]
    finally:
        conn.close()
    if args.to is None:
        if len(bundles) > 1:
            raise InvalidInput("several sessions: pass --to DIR (one SESSION/state.json each)")
        sys.stdout.write(bundles[0][1])
        return 0
    to = Path(args.to).expanduser()
    written = []
    if to.suffix == ".json":
        if len(bundles) > 1:
            raise InvalidInput(f"{to} is one file; several sessions need --to DIR")
        targets = [(bundles[0], to)]
    else:
        targets = [((sid, text), to / sid / "state.json") for sid, text in bundles]
    for (sid, text), path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # a watcher never reads a half-written bundle
        written.append({"session_id": sid, "path": str(path), "bytes": len(text.encode()),
                        "sha256": hashlib.sha256(text.encode()).hexdigest()})
    result = {"database": str(db), "format": FORMAT, "format_version": FORMAT_VERSION, "exported": written}
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


# -- import ---------------------------------------------------------------------------------------


def find_bundles(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise NotFound(f"{path} does not exist")
    return sorted(p for p in path.rglob("state.json") if p.is_file())


def read_bundle(path: Path) -> dict[str, Any]:
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise InvalidInput(f"{path}: not a {FORMAT} file")
    if bundle.get("format_version") not in READABLE_VERSIONS:
        raise InvalidInput(f"{path}: format_version {bundle.get('format_version')!r}; this Baton reads "
                           f"{', '.join(map(str, READABLE_VERSIONS))}")
    session = bundle.get("session")
    if not isinstance(session, dict) or not valid_session_id(session.get("session_id")):
        raise InvalidInput(f"{path}: no valid session.session_id")
    for table in (*CHILDREN, "context_packages", "context_consumption", "skill_outputs"):
        if not isinstance(bundle.get(table, []), list):
            raise InvalidInput(f"{path}: {table} must be a list")
    if bundle.get("development_plan") is not None and not isinstance(bundle["development_plan"], dict):
        raise InvalidInput(f"{path}: development_plan must be an object or null")
    return bundle


def load_bundle(target: Target, bundle: dict[str, Any], report: Report, *, on_conflict: str,
                label: str, continued: bool = False) -> str:
    """Insert (or replace, or rename) one session bundle; returns what happened.

    `continued` (merge): a copy of the session that continues the target's (same_session.extends)
    replaces it, and one the target's continues is left out; neither is a conflict."""
    session = dict(bundle["session"])
    sid = session["session_id"]
    counts = row_counts(bundle)
    tables = {table: report.table(table, table) for table in counts}
    for table, n in counts.items():
        tables[table].source_rows += n
    conn = target.db
    exists = conn.execute("SELECT 1 FROM sessions WHERE session_id = ?", (sid,)).fetchone() is not None
    outcome = "imported"
    if exists:
        current = export_session(conn, sid)
        if _same(current, bundle):
            for table, t in tables.items():
                for _ in range(counts[table]):
                    t.skip("session already in the target, identical")
            return "unchanged"
        why = ""
        if continued:
            if extends(current, bundle) is None:
                for table, t in tables.items():
                    for _ in range(counts[table]):
                        t.skip("the target has this session further along (this copy is where it was earlier)")
                return "unchanged (the target's copy continues this one)"
            difference = extends(bundle, current)
            if difference is None:
                _delete_core(conn, sid, domain=bundle.get("format_version") == 2)
                _insert(target, bundle, tables, update=True)
                grown = sum(counts.values()) - sum(row_counts(current).values())
                rows = f"{grown:+d} row{'' if abs(grown) == 1 else 's'}"
                return f"continued (this copy continues the target's: {rows}; the longer one is kept)"
            why = f" ({difference})"
        if on_conflict == "skip":
            report.violation("sessions", sid, f"{label}: a different session with this id exists{why}",
                             "skipped (use --replace, or merge --on-conflict rename)")
            for table, t in tables.items():
                for _ in range(counts[table]):
                    t.skip("a different session with this id exists in the target")
            return "conflict"
        if on_conflict == "rename":
            digest = hashlib.sha256(dumps(bundle).encode()).hexdigest()[:8]
            new_id = f"{sid}.m{digest}"[-128:]
            report.violation("sessions", sid, f"{label}: a different session with this id exists{why}",
                             f"incoming session imported as {new_id} (id + hash of its content: deterministic)")
            renamed = {**bundle, "session": {**session, "session_id": new_id}}
            if conn.execute("SELECT 1 FROM sessions WHERE session_id = ?", (new_id,)).fetchone():
                for table, t in tables.items():
                    for _ in range(counts[table]):
                        t.skip("already merged under its renamed id")
                return f"renamed:{new_id} (already there)"
            _insert(target, renamed, tables)
            return f"renamed:{new_id}"
        _delete_core(conn, sid, domain=bundle.get("format_version") == 2)
        outcome = "replaced"
    _insert(target, bundle, tables, update=exists)
    return outcome


def _same(current: dict[str, Any], bundle: dict[str, Any]) -> bool:
    """Is the session in the database what the bundle says? (A format-1 bundle says nothing about
    the full-profile rows, so only the core rows are compared.)"""
    keys = ["session", *CHILDREN]
    if bundle.get("format_version") == 2:
        keys += ["context_packages", "context_consumption", "skill_outputs", "development_plan"]
    if bundle.get("format_version") == 1:
        current = {**current, "task_groups": [
            {k: v for k, v in g.items() if k != "metadata"} for g in current.get("task_groups", [])]}
        bundle = {**bundle, "task_groups": [
            {k: v for k, v in g.items() if k != "metadata"} for g in bundle.get("task_groups", [])]}
    empty: dict[str, Any] = {"development_plan": None}
    return all(current.get(k, empty.get(k, [])) == bundle.get(k, empty.get(k, [])) for k in keys)


def _delete_core(conn: sqlite3.Connection, sid: str, *, domain: bool) -> None:
    if domain and _has_domain(conn):
        packages = "SELECT package_id FROM context_packages WHERE session_id = ?"
        conn.execute("DELETE FROM context_consumption WHERE session_id = ?", (sid,))
        conn.execute(f"DELETE FROM context_package_consumers WHERE package_id IN ({packages})", (sid,))
        conn.execute("UPDATE context_packages SET supersedes = NULL, superseded_by = NULL WHERE session_id = ?", (sid,))
        conn.execute("DELETE FROM context_packages WHERE session_id = ?", (sid,))
        conn.execute("DELETE FROM skill_outputs WHERE session_id = ?", (sid,))
        conn.execute("DELETE FROM plan_phases WHERE plan_id IN (SELECT plan_id FROM development_plans"
                     " WHERE session_id = ?)", (sid,))
        conn.execute("DELETE FROM development_plans WHERE session_id = ?", (sid,))
    for table in CHILDREN:
        conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (sid,))
    conn.execute("DELETE FROM idempotency_keys WHERE session_id = ? AND operation NOT LIKE 'import-%'", (sid,))


def _insert(target: Target, bundle: dict[str, Any], tables: dict[str, Any], *, update: bool = False) -> None:
    session = dict(bundle["session"])
    sid = session["session_id"]
    session["metadata"] = canonical_json(session.get("metadata") or {})
    row = {c: session.get(c, _default("sessions", c)) for c in SESSION_COLUMNS}
    if update:
        sets = ", ".join(f"{c} = ?" for c in SESSION_COLUMNS if c != "session_id")
        target.db.execute(f"UPDATE sessions SET {sets} WHERE session_id = ?",
                          (*[row[c] for c in SESSION_COLUMNS if c != "session_id"], sid))
    else:
        target.insert("sessions", row)
    tables["sessions"].imported += 1
    for table, (_, columns, json_columns) in CHILDREN.items():
        for item in bundle.get(table, []):
            values = {c: item.get(c) for c in columns if c in item}
            for column in json_columns:
                if values.get(column) is not None:
                    values[column] = canonical_json(values[column])
            values["session_id"] = sid
            target.insert(table, values)
            tables[table].imported += 1
    if bundle.get("format_version") == 2:
        _insert_domain(target, bundle, sid, tables)


def _insert_domain(target: Target, bundle: dict[str, Any], sid: str, tables: dict[str, Any]) -> None:
    ids: list[int] = []
    for package in bundle.get("context_packages") or []:
        values = {c: package.get(c) for c in PACKAGE_COLUMNS if c in package}
        old = values.get("supersedes")
        values["supersedes"] = ids[old] if isinstance(old, int) and 0 <= old < len(ids) else None
        new_id = target.insert("context_packages", {"session_id": sid, **values})
        if values["supersedes"] is not None:
            target.db.execute("UPDATE context_packages SET superseded_by = ? WHERE package_id = ?",
                              (new_id, values["supersedes"]))
        ids.append(new_id)
        tables["context_packages"].imported += 1
        for consumer in package.get("consumers") or []:
            target.insert("context_package_consumers",
                          {"package_id": new_id, **{c: consumer.get(c) for c in CONSUMER_COLUMNS if c in consumer}})
            tables["context_package_consumers"].imported += 1
    for item in bundle.get("context_consumption") or []:
        values = {c: item.get(c) for c in CONSUMPTION_COLUMNS if c in item and c != "package_id"}
        index = item.get("package")
        if not isinstance(index, int) or not 0 <= index < len(ids):
            raise InvalidInput(f"session {sid}: context_consumption names package {index!r}, not in the bundle")
        target.insert("context_consumption", {"session_id": sid, "package_id": ids[index], **values})
        tables["context_consumption"].imported += 1
    for item in bundle.get("skill_outputs") or []:
        values = {c: item.get(c) for c in SKILL_COLUMNS if c in item}
        values["output"] = canonical_json(values.get("output"))
        target.insert("skill_outputs", {"session_id": sid, **values})
        tables["skill_outputs"].imported += 1
    plan = bundle.get("development_plan")
    if isinstance(plan, dict):
        plan_id = target.insert("development_plans", {
            "session_id": sid, "original_prompt": plan.get("original_prompt"), "plan_text": plan.get("plan_text"),
            "metadata": canonical_json(plan.get("metadata") or {}), "created_at": plan.get("created_at"),
            "updated_at": plan.get("updated_at")})
        tables["development_plans"].imported += 1
        for phase in plan.get("phases") or []:
            target.insert("plan_phases", {"plan_id": plan_id, **{c: phase.get(c) for c in PHASE_COLUMNS if c in phase}})
            tables["plan_phases"].imported += 1


def run_import_bundle(db: Path, args: Any) -> Report:
    from baton.transfer.cli import finish

    paths = find_bundles(Path(args.path))
    report = Report("import bundle", str(args.path), str(db), args.dry_run)
    bundles = []
    for path in paths:
        try:
            bundles.append((path, read_bundle(path)))
        except InvalidInput as exc:
            report.violation("bundle", str(path), exc.message, "skipped")
    with Target(db, dry_run=args.dry_run) as target:
        for table in ("sessions", *CHILDREN, *DOMAIN_TABLES):
            report.table(table, table).target_before = target.count(table)
        for path, bundle in bundles:
            outcome = load_bundle(target, bundle, report, on_conflict="replace" if args.replace else "skip",
                                  label=str(path))
            report.note(f"{bundle['session']['session_id']}: {outcome} ({path})")
        for table in ("sessions", *CHILDREN, *DOMAIN_TABLES):
            report.table(table, table).target_after = target.count(table)
        return finish(report, target, strict=args.strict)


# -- sync -----------------------------------------------------------------------------------------


def sync_once(db: Path, paths: list[Path], *, dry_run: bool) -> Report:
    """Every bundle is the truth for its session: insert, leave identical, or replace (one
    transaction per session, so a long sync never holds the write lock for long)."""
    report = Report("sync", ", ".join(str(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else ""), str(db),
                    dry_run)
    with Target(db, dry_run=dry_run) as target:
        for table in ("sessions", *CHILDREN, *DOMAIN_TABLES):
            report.table(table, table).target_before = target.count(table)
        for path in paths:
            try:
                bundle = read_bundle(path)
            except InvalidInput as exc:
                report.violation("bundle", str(path), exc.message, "skipped")
                continue
            outcome = load_bundle(target, bundle, report, on_conflict="replace", label=str(path))
            report.note(f"{bundle['session']['session_id']}: {outcome}")
            if not dry_run:
                target.chunk()
        for table in ("sessions", *CHILDREN, *DOMAIN_TABLES):
            report.table(table, table).target_after = target.count(table)
        target.finish(commit=True)
        report.committed = not dry_run
    return report


def run_sync(db: Path, args: Any) -> int:
    from baton.transfer.cli import print_reports

    root = Path(args.path)
    if not root.is_dir():
        raise NotFound(f"{root} is not a directory")
    seen = _signature(root)  # before the first pass: a file changing during it is synced again next scan
    report = sync_once(db, sorted(seen), dry_run=args.dry_run)
    print_reports([report], as_json=args.json)
    if not args.watch:
        return 0
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop:
            time.sleep(max(0.05, args.interval))
            now = _signature(root)
            changed = sorted(p for p, sig in now.items() if seen.get(p) != sig)
            seen = now
            if changed:
                report = sync_once(db, changed, dry_run=args.dry_run)
                print_reports([report], as_json=args.json)
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    return 0


def _signature(root: Path) -> dict[Path, tuple[int, int]]:
    found = {}
    for path in find_bundles(root):
        try:
            stat = path.stat()
        except OSError:
            continue
        found[path] = (stat.st_mtime_ns, stat.st_size)
    return found
