"""`baton import bazinga PATH`: a BAZINGA `bazinga.db` (schema v15 to v19) into Baton's tables.

Mapping (BAZINGA -> Baton), each row recorded in the import ledger under its BAZINGA id:
- sessions -> sessions: `original_requirements` -> requirements, `start_time` (UTC) -> created_at,
  `end_time` (Python *local* time) -> ended_at for terminal sessions; the raw values, the offset
  assumed and why go to `metadata.bazinga_import`.
- orchestration_logs -> logs: one table for interaction / reasoning / event rows in both;
  `reasoning_phase` -> phase, `confidence_level` -> confidence, `references_json` -> refs,
  `event_subtype` -> event_type, `event_payload` -> payload. v19 event idempotency keys are also
  registered as `save-event` keys, so an agent retrying the same event through Baton gets a replay.
- task_groups -> task_groups: `id` -> group_id, tiers `Developer` / `Senior Software Engineer` ->
  developer / senior_software_engineer, `last_review_status` APPROVED / CHANGES_REQUESTED ->
  review_status approved / changes_requested; columns Baton has no place for
  (`context_references`, `speckit_task_ids`) go to task_groups.metadata as JSON values; the
  package ids in context_references are translated to Baton package_ids (originals kept in
  `metadata.bazinga_import`).
- state_snapshots -> state_snapshots: versions numbered per (session, state_type, group_id) in
  id order (v15 keeps history; v19 keeps the latest only). v15 has no group_id: `group_status`
  rows take it from `state_data.group` when that is a valid group id, else `global`.
- success_criteria -> success_criteria; token_usage -> token_usage (`tokens_estimated` ->
  input_tokens, the only figure BAZINGA records).
- context_packages -> context_packages: `producer_agent` -> producer; a global package (`scope`
  'global' or group_id NULL) gets group_id 'global'; `supersedes_id` is translated to the new id.
- context_package_consumers -> context_package_consumers (with its `iteration`, schema 0004).
  Baton keeps one row per (package, agent): a second BAZINGA row for the same pair (another
  iteration) is reported as skipped.
- consumption_scope -> context_consumption (package ids translated; `scope_id` kept in the ledger).
- skill_outputs -> skill_outputs: agent_type NULL -> '', group_id NULL -> 'global', `timestamp` ->
  created_at, `output_data` parsed and stored as compact JSON (secrets redacted).
- development_plans -> development_plans + one plan_phases row per element of `phases`; the
  phase's `completed_at` is Python *local* time, converted with the session's offset. Baton
  derives current_phase / total from the phases; BAZINGA's stored current_phase, total_phases and
  the phases' extra keys (groups, progress_percent) are kept in `metadata.bazinga_import`.
- error_patterns -> error_patterns (project-level, ledger session `project:<project>`):
  `pattern_hash` -> signature, `signature_json.message_pattern` -> normalized/example message,
  `error_type`, `lang`, `created_at` -> first_seen.
- strategies -> strategies (`lang`, `framework`, `last_seen` -> updated_at). Baton keeps one
  strategy per (project, topic) (save-strategy counts helpfulness on it); a second BAZINGA
  strategy on a topic already taken is imported under a qualified topic, e.g.
  `implementation (typescript/react)`, and reported as adjusted.
- Agent type `pm` -> `project_manager` everywhere.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from baton.errors import InvalidInput
from baton.redact import redact
from baton.transfer.common import (
    BadTime,
    Target,
    canonical_json,
    format_offset,
    local_text,
    locate,
    machine_offset,
    normalise_agent_type,
    parse_time,
    quote,
    row_digest,
    sha256_file,
    table_columns,
    utc_text,
    valid_group_id,
    valid_session_id,
)
from baton.transfer.report import Report, TableReport

OPERATION = "import-bazinga"
SUPPORTED_VERSIONS = range(15, 20)

SESSION_STATUSES = {"active", "paused", "completed", "failed", "cancelled"}
TERMINAL = {"completed", "failed", "cancelled"}
GROUP_STATUSES = {"pending", "in_progress", "approved_pending_merge", "merging", "completed", "failed"}
CRITERION_STATUSES = {"pending", "met", "blocked", "failed"}
STATE_TYPES = {"pm", "orchestrator", "group_status", "investigation"}
PHASES = {"understanding", "approach", "decisions", "risks", "blockers", "pivot", "completion"}
CONFIDENCES = {"high", "medium", "low"}
TIERS = {"developer": "developer", "senior software engineer": "senior_software_engineer",
         "senior_software_engineer": "senior_software_engineer"}
REVIEW = {"APPROVED": "approved", "CHANGES_REQUESTED": "changes_requested"}
MERGE = {"pending", "in_progress", "merged", "conflict", "test_failure"}
PACKAGE_TYPES = {"research", "failures", "decisions", "handoff", "investigation"}
PRIORITIES = {"low", "medium", "high", "critical"}
PHASE_STATUSES = {"pending", "in_progress", "completed", "blocked", "skipped"}
SKILL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
COUNTERS = ("revision_count", "qa_attempts", "tl_review_attempts", "review_iteration", "no_progress_count",
            "blocking_issues_count")

# BAZINGA tables with no Baton table in this schema: reported (source rows, all skipped).
SEED_TABLES = ("workflow_transitions", "agent_markers", "workflow_special_rules")
INTERNAL_TABLES = {"schema_version", "sqlite_sequence", "sqlite_stat1"}
ProgressFn = Callable[[int], None]


@dataclass
class Options:
    local_offset: timedelta | None = None
    project: str | None = None


@dataclass
class SessionInfo:
    state: str  # "new", "imported" (by an earlier run) or "skipped"
    offset: timedelta = timedelta(0)
    offset_source: str = ""
    reason: str = ""


def source_version(src: sqlite3.Connection) -> int | None:
    try:
        row = src.execute("SELECT max(version) FROM schema_version").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None or row[0] is None else int(row[0])


def is_bazinga(src: sqlite3.Connection) -> bool:
    names = {r[0] for r in src.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    return {"sessions", "orchestration_logs", "task_groups"} <= names


def count_rows(src: sqlite3.Connection) -> int:
    names = [r[0] for r in src.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")]
    return sum(int(src.execute(f"SELECT count(*) FROM {quote(n)}").fetchone()[0]) for n in names
               if n not in INTERNAL_TABLES)


class BazingaImport:
    def __init__(self, src: sqlite3.Connection, target: Target, report: Report, source_path: Path,
                 options: Options, progress: ProgressFn | None = None) -> None:
        self.src = src
        self.target = target
        self.report = report
        self.path = source_path
        self.options = options
        self.advance: ProgressFn = progress or (lambda n: None)
        self.sessions: dict[str, SessionInfo] = {}
        self.tables = {r[0] for r in src.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        self.version = source_version(src)
        self.package_map: dict[int, int] = {}  # BAZINGA context_packages.id -> Baton package_id
        self.handled: set[str] = set()

    # -- driver -----------------------------------------------------------------------------------

    def run(self) -> Report:
        if not is_bazinga(self.src):
            raise InvalidInput(f"{self.path} is not a BAZINGA database (no sessions / orchestration_logs tables)")
        info = self.report.source_info
        info["kind"] = "bazinga"
        info["schema_version"] = self.version
        info["sha256"] = sha256_file(self.path)
        if self.version not in SUPPORTED_VERSIONS:
            self.report.note(f"schema version {self.version} is outside the tested v15-v19; columns are read by name")
        self.project = self._project()
        steps: list[tuple[str, str, Callable[[TableReport], None]]] = [
            ("sessions", "sessions", self._sessions),
            # packages before groups: a group's context_references name packages by id
            ("context_packages", "context_packages", self._packages),
            ("context_package_consumers", "context_package_consumers", self._consumers),
            ("task_groups", "task_groups", self._task_groups),
            ("success_criteria", "success_criteria", self._criteria),
            ("orchestration_logs", "logs", self._logs),
            ("state_snapshots", "state_snapshots", self._states),
            ("token_usage", "token_usage", self._tokens),
            ("consumption_scope", "context_consumption", self._consumption),
            ("skill_outputs", "skill_outputs", self._skill_outputs),
            ("development_plans", "development_plans", self._plans),
            ("error_patterns", "error_patterns", self._error_patterns),
            ("strategies", "strategies", self._strategies),
        ]
        for source_table, target_table, step in steps:
            if source_table not in self.tables or not self.target.has_table(target_table):
                continue
            t = self.report.table(source_table, target_table)
            t.target_before = self.target.count(target_table)
            try:
                step(t)
            except BadTime as exc:  # raised where only the value is known: say which row holds it
                where = locate(self.src, exc.value, first=source_table) or source_table
                raise InvalidInput(f"{self.path}: {where}: {exc.message}; nothing was imported") from None
            t.target_after = self.target.count(target_table)
            if source_table == "development_plans":
                phases = self.report.table("development_plans.phases", "plan_phases")
                phases.target_after = self.target.count("plan_phases")
        self.handled = {s[0] for s in steps if s[0] in self.tables and self.target.has_table(s[1])}
        self._not_imported()
        return self.report

    def _rows(self, table: str, order: str = "rowid") -> list[dict[str, Any]]:
        return [dict(r) for r in self.src.execute(f"SELECT * FROM {quote(table)} ORDER BY {order}")]

    def _project(self) -> str | None:
        if self.options.project:
            return self.options.project
        found: set[str] = set()
        for table in ("error_patterns", "strategies"):
            if table in self.tables:
                found |= {r[0] for r in self.src.execute(f"SELECT DISTINCT project_id FROM {table}") if r[0]}
        if len(found) == 1:
            project = found.pop()
            self.report.note(f"project {project!r} taken from error_patterns/strategies (the only project named "
                             "in the source); pass --project to choose another")
            return project
        if found:
            self.report.note(f"the source names several projects ({', '.join(sorted(found))}); sessions get no "
                             "project unless --project is given")
        return None

    def _session_of(self, t: TableReport, row: dict[str, Any]) -> str | None:
        sid = row.get("session_id")
        info = self.sessions.get(str(sid))
        if info is None:
            t.skip("its session is not in the source")
            return None
        if info.state == "skipped":
            t.skip("its session was skipped")
            return None
        return str(sid)

    def _seen(self, t: TableReport, sid: str, key: str, digest: str) -> bool:
        hit = self.target.ledger_get(OPERATION, sid, key)
        if hit is None:
            return False
        if hit[0] == digest:
            t.skip("already imported (same row)")
        else:
            t.skip("already imported; changed in the source since, not overwritten")
        return True

    def _record(self, sid: str, key: str, digest: str, table: str, new_id: Any, extra: dict[str, Any]) -> None:
        response: dict[str, Any] = {"table": table, "id": new_id, "source_sha256": self.report.source_info["sha256"]}
        if extra:
            response["extra"] = extra
        self.target.ledger_put(OPERATION, sid, key, digest, response)

    def _violation(self, table: str, row: str, problem: str, action: str) -> None:
        self.report.violation(table, row, problem, action)

    # -- sessions ---------------------------------------------------------------------------------

    def _offset(self, sid: str, start: str | None, end: str | None) -> tuple[timedelta, str]:
        if self.options.local_offset is not None:
            return self.options.local_offset, "given with --local-offset"
        match = re.fullmatch(r"bazinga_(\d{8})_(\d{6})", sid)
        if match and start:
            local = datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S")
            diff = local - parse_time(start).replace(tzinfo=None)
            rounded = timedelta(minutes=15 * round(diff.total_seconds() / 900))
            if abs(diff - rounded) <= timedelta(minutes=5) and abs(rounded) <= timedelta(hours=14):
                return rounded, (f"inferred: the session id carries local time {local:%H:%M:%S}, "
                                 f"start_time is {start} UTC")
        moment = parse_time(end).replace(tzinfo=None) if end else datetime.now()
        return machine_offset(moment), "this machine's time zone (no evidence in the data; use --local-offset)"

    def _sessions(self, t: TableReport) -> None:
        for row in self._rows("sessions"):
            t.source_rows += 1
            self.advance(1)
            sid = row["session_id"]
            if not valid_session_id(sid):
                self._violation("sessions", repr(sid), "not a valid Baton session id", "skipped with its rows")
                self.sessions[str(sid)] = SessionInfo("skipped")
                t.skip("invalid session id")
                continue
            digest = row_digest(row)
            hit = self.target.ledger_get(OPERATION, sid, "sessions")
            if hit is not None:
                offset = timedelta(minutes=int(hit[1].get("extra", {}).get("offset_minutes", 0)))
                self.sessions[sid] = SessionInfo("imported", offset, "as in the first import")
                t.skip("already imported (same row)" if hit[0] == digest
                       else "already imported; changed in the source since, not overwritten")
                continue
            exists = self.target.db.execute("SELECT 1 FROM sessions WHERE session_id = ?", (sid,)).fetchone()
            if exists:
                self.sessions[sid] = SessionInfo("skipped")
                t.skip("a session with this id already exists in the target (not from this import)")
                continue
            mapped = self._map_session(row, t)
            if mapped is None:
                self.sessions[sid] = SessionInfo("skipped")
                continue
            self.target.insert("sessions", mapped)
            info = self.sessions[sid]
            self._record(sid, "sessions", digest, "sessions", sid,
                         {"offset_minutes": int(info.offset.total_seconds() // 60)})
            t.imported += 1

    def _map_session(self, row: dict[str, Any], t: TableReport) -> dict[str, Any] | None:
        sid = row["session_id"]
        status = row.get("status") or "active"
        if status not in SESSION_STATUSES:
            self._violation("sessions", sid, f"status {status!r} is not a Baton session status",
                            "skipped with its rows")
            t.skip("unknown status")
            return None
        mode = row.get("mode") or "simple"
        if mode not in {"simple", "parallel"}:
            self._violation("sessions", sid, f"mode {mode!r} is not simple/parallel", "imported as simple")
            mode = "simple"
        requirements = row.get("original_requirements")
        if not isinstance(requirements, str) or not requirements.strip():
            self._violation("sessions", sid, "no original_requirements (Baton requires them)",
                            "imported with a placeholder text")
            requirements = f"(imported from BAZINGA: session {sid} recorded no requirements)"
        metadata: dict[str, Any]
        raw_meta = row.get("metadata")
        try:
            parsed = json.loads(raw_meta) if raw_meta else {}
            metadata = parsed if isinstance(parsed, dict) else {"value": parsed}
        except ValueError:
            self._violation("sessions", sid, "metadata is not JSON", "kept as metadata.raw")
            metadata = {"raw": raw_meta}
        start = row.get("start_time") or row.get("created_at")
        end = row.get("end_time")
        offset, why = self._offset(sid, start, end)
        self.sessions[sid] = SessionInfo("new", offset, why)
        created = utc_text(start) or utc_text(row.get("created_at"))
        ended = local_text(end, offset) if end else None
        provenance: dict[str, Any] = {
            "source": self.path.name,
            "source_sha256": self.report.source_info["sha256"],
            "schema_version": self.version,
            "start_time": start,
            "end_time": end,
        }
        if end:
            provenance["end_time_assumed_offset"] = format_offset(offset)
            provenance["end_time_offset_source"] = why
            t.adjusted[f"end_time read as local time {format_offset(offset)}"] += 1
            self.report.note(f"session {sid}: end_time {end} read as local time UTC{format_offset(offset)} "
                             f"({why}) -> {ended}")
        metadata["bazinga_import"] = provenance
        if ended and status not in TERMINAL:
            t.adjusted["end_time of a non-terminal session kept in metadata only"] += 1
            ended = None
        if status in TERMINAL and not ended:
            ended = self._last_activity(sid) or created
            t.adjusted["terminal session without end_time: ended_at = last activity"] += 1
        if not created:
            created = self._last_activity(sid) or ended
        if not created:
            self._violation("sessions", sid, "no start_time or created_at", "skipped with its rows")
            t.skip("no timestamps")
            return None
        updated = max(x for x in (created, ended, self._last_activity(sid)) if x)
        return {
            "session_id": sid,
            "project": self.project,
            "mode": mode,
            "status": status,
            "requirements": requirements,
            "initial_branch": row.get("initial_branch"),
            "metadata": canonical_json(metadata),
            "created_at": created,
            "updated_at": updated,
            "ended_at": ended,
        }

    def _last_activity(self, sid: str) -> str | None:
        found: list[str] = []
        for table, column in (("orchestration_logs", "timestamp"), ("task_groups", "updated_at"),
                              ("state_snapshots", "timestamp"), ("token_usage", "timestamp")):
            if table in self.tables:
                value = self.src.execute(f"SELECT max({column}) FROM {table} WHERE session_id = ?", (sid,)).fetchone()
                if value and value[0]:
                    found.append(str(utc_text(value[0])))
        return max(found) if found else None

    # -- task groups ------------------------------------------------------------------------------

    def _task_groups(self, t: TableReport) -> None:
        for row in self._rows("task_groups", "rowid"):
            t.source_rows += 1
            self.advance(1)
            sid = self._session_of(t, row)
            if sid is None:
                continue
            gid = row.get("id")
            key = f"task_groups:{gid}"
            digest = row_digest(row)
            if self._seen(t, sid, key, digest):
                continue
            label = f"{sid}/{gid}"
            if not valid_group_id(gid):
                self._violation("task_groups", label, "not a valid Baton group id", "skipped")
                t.skip("invalid group id")
                continue
            if self.target.db.execute("SELECT 1 FROM task_groups WHERE session_id = ? AND group_id = ?",
                                      (sid, gid)).fetchone():
                t.skip("group already exists in the target session")
                continue
            mapped, extra = self._map_group(row, label, t)
            if mapped is None:
                continue
            new_id = self.target.insert("task_groups", mapped)
            self._record(sid, key, digest, "task_groups", new_id, extra)
            t.imported += 1

    def _map_group(self, row: dict[str, Any], label: str,
                   t: TableReport) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        extra: dict[str, Any] = {}
        status = row.get("status") or "pending"
        if status not in GROUP_STATUSES:
            self._violation("task_groups", label, f"status {status!r} is not a Baton group status", "skipped")
            t.skip("unknown status")
            return None, extra
        name = row.get("name")
        if not isinstance(name, str) or not name.strip():
            self._violation("task_groups", label, "empty name", "skipped")
            t.skip("empty name")
            return None, extra
        complexity = row.get("complexity")
        if complexity is not None and (not isinstance(complexity, int) or not 1 <= complexity <= 10):
            self._violation("task_groups", label, f"complexity {complexity!r} not in 1-10", "imported as NULL")
            extra["complexity"] = complexity
            complexity = None
        tier_raw = row.get("initial_tier")
        tier = None if tier_raw is None else TIERS.get(str(tier_raw).strip().lower())
        if tier_raw is not None and tier is None:
            self._violation("task_groups", label, f"initial_tier {tier_raw!r} unknown", "imported as NULL")
            extra["initial_tier"] = tier_raw
        elif tier_raw is not None and tier != tier_raw:
            t.adjusted[f"initial_tier {tier_raw!r} -> {tier!r}"] += 1
        specializations = self._json_array(row.get("specializations"), "task_groups", label, "specializations",
                                           extra, t)
        review_raw = row.get("last_review_status")
        review = None if review_raw is None else REVIEW.get(str(review_raw).upper())
        if review_raw is not None and review is None:
            self._violation("task_groups", label, f"last_review_status {review_raw!r} is not APPROVED or "
                            "CHANGES_REQUESTED (BAZINGA's CHECK lets anything through)", "imported as NULL")
            extra["last_review_status"] = review_raw
        merge = row.get("merge_status")
        if merge is not None and merge not in MERGE:
            self._violation("task_groups", label, f"merge_status {merge!r} unknown", "imported as NULL")
            extra["merge_status"] = merge
            merge = None
        security = row.get("security_sensitive") or 0
        if security not in (0, 1):
            self._violation("task_groups", label, f"security_sensitive {security!r} is not 0/1", "imported as 1")
            security = 1
        item_count = row.get("item_count")
        if item_count is not None and (not isinstance(item_count, int) or item_count < 0):
            self._violation("task_groups", label, f"item_count {item_count!r} invalid", "imported as NULL")
            item_count = None
        mapped: dict[str, Any] = {
            "session_id": row["session_id"],
            "group_id": row["id"],
            "name": row["name"],
            "status": status,
            "assigned_to": row.get("assigned_to"),
            "complexity": complexity,
            "initial_tier": tier,
            "specializations": specializations,
            "item_count": item_count,
            "component_path": row.get("component_path"),
            "security_sensitive": int(security),
            "depends_on": "[]",
            "review_status": review,
            "merge_status": merge,
            "feature_branch": row.get("feature_branch"),
        }
        for counter in COUNTERS:
            value = row.get(counter, 0)
            if value is None:
                value = 0
            if not isinstance(value, int) or value < 0:
                self._violation("task_groups", label, f"{counter} {value!r} invalid", "imported as 0")
                value = 0
            mapped[counter] = value
        created = utc_text(row.get("created_at")) or self._session_created(row["session_id"])
        mapped["created_at"] = created
        mapped["updated_at"] = utc_text(row.get("updated_at")) or created
        mapped["metadata"] = canonical_json(self._group_metadata(row, label, extra, t))
        return mapped, extra

    def _group_metadata(self, row: dict[str, Any], label: str, extra: dict[str, Any],
                        t: TableReport) -> dict[str, Any]:
        metadata: dict[str, Any] = {}
        for column in ("speckit_task_ids", "context_references"):
            raw = row.get(column)
            if raw is None:
                continue
            try:
                value = json.loads(raw)
            except (TypeError, ValueError):
                self._violation("task_groups", label, f"{column} is not JSON", "kept as text in metadata")
                value = raw
            if column == "context_references" and isinstance(value, list):
                mapped = [self.package_map.get(v) if isinstance(v, int) else None for v in value]
                if all(m is not None for m in mapped):
                    metadata.setdefault("bazinga_import", {})["context_references"] = value
                    value = mapped
                    t.adjusted["context_references -> metadata (translated to Baton package ids)"] += 1
                else:
                    self.report.note(f"{label}: context_references {raw} name packages that were not imported; "
                                     "kept with BAZINGA's ids")
                    t.adjusted["context_references -> metadata (BAZINGA ids kept)"] += 1
            else:
                t.adjusted[f"{column} -> metadata"] += 1
            metadata[column] = value
        return metadata

    def _session_created(self, sid: str) -> str:
        row = self.target.db.execute("SELECT created_at FROM sessions WHERE session_id = ?", (sid,)).fetchone()
        return str(row[0])

    def _json_array(self, raw: Any, table: str, label: str, column: str, extra: dict[str, Any],
                    t: TableReport) -> str:
        if raw is None:
            t.adjusted[f"{column} NULL -> []"] += 1
            return "[]"
        try:
            value = json.loads(raw)
        except (TypeError, ValueError):
            self._violation(table, label, f"{column} is not JSON", "imported as [] (original in the ledger)")
            extra[column] = raw
            return "[]"
        if not isinstance(value, list):
            t.adjusted[f"{column} non-array wrapped in a list"] += 1
            value = [value]
        return canonical_json(value)

    # -- success criteria -------------------------------------------------------------------------

    def _criteria(self, t: TableReport) -> None:
        for row in self._rows("success_criteria", "id"):
            t.source_rows += 1
            self.advance(1)
            sid = self._session_of(t, row)
            if sid is None:
                continue
            key = f"success_criteria:{row['id']}"
            digest = row_digest(row)
            if self._seen(t, sid, key, digest):
                continue
            label = f"{sid}/criterion {row['id']}"
            text = row.get("criterion")
            if not isinstance(text, str) or not text.strip():
                self._violation("success_criteria", label, "empty criterion", "skipped")
                t.skip("empty criterion")
                continue
            status = row.get("status") or "pending"
            if status not in CRITERION_STATUSES:
                self._violation("success_criteria", label, f"status {status!r} unknown", "skipped")
                t.skip("unknown status")
                continue
            if self.target.db.execute("SELECT 1 FROM success_criteria WHERE session_id = ? AND criterion = ?",
                                      (sid, text)).fetchone():
                t.skip("criterion text already present in the target session")
                continue
            required = row.get("required_for_completion")
            required = 1 if required is None else int(bool(required))
            created = utc_text(row.get("created_at")) or self._session_created(sid)
            new_id = self.target.insert("success_criteria", {
                "session_id": sid, "criterion": text, "status": status, "actual": row.get("actual"),
                "evidence": row.get("evidence"), "required_for_completion": required,
                "created_at": created, "updated_at": utc_text(row.get("updated_at")) or created,
            })
            self._record(sid, key, digest, "success_criteria", new_id, {})
            t.imported += 1

    # -- logs ---------------------------------------------------------------------------------------

    def _logs(self, t: TableReport) -> None:
        for row in self._rows("orchestration_logs", "id"):
            t.source_rows += 1
            self.advance(1)
            sid = self._session_of(t, row)
            if sid is None:
                continue
            key = f"orchestration_logs:{row['id']}"
            digest = row_digest(row)
            if self._seen(t, sid, key, digest):
                continue
            mapped = self._map_log(row, f"{sid}/log {row['id']}", t)
            if mapped is None:
                continue
            new_id = self.target.insert("logs", mapped)
            self._record(sid, key, digest, "logs", new_id, {})
            if mapped["log_type"] == "event" and row.get("idempotency_key"):
                self._register_event_key(sid, row["idempotency_key"], mapped, new_id, t)
            t.imported += 1

    def _map_log(self, row: dict[str, Any], label: str, t: TableReport) -> dict[str, Any] | None:
        log_type = row.get("log_type") or "interaction"
        if log_type not in {"interaction", "reasoning", "event"}:
            self._violation("orchestration_logs", label, f"log_type {log_type!r} unknown", "skipped")
            t.skip("unknown log_type")
            return None
        t.adjusted[f"log_type {log_type}"] += 1
        agent = normalise_agent_type(row.get("agent_type"))
        if agent != row.get("agent_type"):
            t.adjusted[f"agent_type {row.get('agent_type')!r} -> {agent!r}"] += 1
        content = row.get("content")
        if log_type != "event" and (agent is None or content is None):
            self._violation("orchestration_logs", label, "no agent_type or content", "skipped")
            t.skip("no agent_type or content")
            return None
        phase = row.get("reasoning_phase")
        if log_type == "reasoning" and phase not in PHASES:
            self._violation("orchestration_logs", label, f"reasoning phase {phase!r} unknown", "skipped")
            t.skip("reasoning without a valid phase")
            return None
        confidence = row.get("confidence_level")
        if confidence is not None and confidence not in CONFIDENCES:
            self._violation("orchestration_logs", label, f"confidence {confidence!r} unknown", "imported as NULL")
            confidence = None
        group = row.get("group_id")
        if group is not None and not valid_group_id(group, scope=True):
            self._violation("orchestration_logs", label, f"group_id {group!r} invalid", "imported as NULL")
            group = None
        iteration = row.get("iteration")
        if iteration is not None and (not isinstance(iteration, int) or iteration < 0):
            self._violation("orchestration_logs", label, f"iteration {iteration!r} invalid", "imported as NULL")
            iteration = None
        refs = None
        if row.get("references_json") is not None:
            refs = self._json_array(row["references_json"], "orchestration_logs", label, "references_json", {}, t)
        was_redacted = bool(row.get("redacted"))
        if content is not None and not was_redacted:
            content, changed = redact(content)
            if changed:
                was_redacted = True
                t.adjusted["secret redacted on import"] += 1
        payload = None
        event_type = None
        if log_type == "event":
            event_type = row.get("event_subtype")
            if not event_type:
                self._violation("orchestration_logs", label, "event without event_subtype", "skipped")
                t.skip("event without a type")
                return None
            payload = self._payload(row.get("event_payload"), label, t)
            if not was_redacted:
                payload, changed = redact(payload)
                if changed:
                    was_redacted = True
                    t.adjusted["secret redacted on import"] += 1
        return {
            "session_id": row["session_id"],
            "log_type": log_type,
            "agent_type": agent,
            "agent_id": row.get("agent_id"),
            "group_id": group,
            "iteration": iteration,
            "phase": phase if log_type == "reasoning" else None,
            "confidence": confidence,
            "refs": refs,
            "event_type": event_type,
            "payload": payload,
            "content": content,
            "content_length": len(content or ""),
            "redacted": int(was_redacted),
            "timestamp": utc_text(row.get("timestamp")) or self._session_created(row["session_id"]),
        }

    def _payload(self, raw: Any, label: str, t: TableReport) -> str:
        if raw is None:
            t.adjusted["event without payload -> {}"] += 1
            return "{}"
        try:
            value = json.loads(raw)
        except (TypeError, ValueError):
            self._violation("orchestration_logs", label, "event_payload is not JSON", "kept as payload.raw")
            return canonical_json({"raw": raw})
        if not isinstance(value, dict):
            t.adjusted["non-object event payload wrapped as {value: ...}"] += 1
            value = {"value": value}
        return canonical_json(value)

    def _register_event_key(self, sid: str, key: str, mapped: dict[str, Any], new_id: int, t: TableReport) -> None:
        # The same request hash `save-event` computes, so a retry through Baton replays this event.
        request = {"session_id": sid, "event_type": mapped["event_type"], "payload": json.loads(mapped["payload"]),
                   "group_id": mapped["group_id"]}
        digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
        if self.target.ledger_put("save-event", sid, key, digest, {"event_id": new_id}):
            t.adjusted["event idempotency_key registered for save-event"] += 1
        else:
            t.adjusted["event idempotency_key already registered (not re-registered)"] += 1

    # -- state snapshots ----------------------------------------------------------------------------

    def _states(self, t: TableReport) -> None:
        has_group = "group_id" in table_columns(self.src, "state_snapshots")
        for row in self._rows("state_snapshots", "id"):
            t.source_rows += 1
            self.advance(1)
            sid = self._session_of(t, row)
            if sid is None:
                continue
            key = f"state_snapshots:{row['id']}"
            digest = row_digest(row)
            if self._seen(t, sid, key, digest):
                continue
            label = f"{sid}/state {row['id']}"
            state_type = row.get("state_type")
            if state_type not in STATE_TYPES:
                self._violation("state_snapshots", label, f"state_type {state_type!r} unknown", "skipped")
                t.skip("unknown state_type")
                continue
            try:
                state = json.loads(row["state_data"])
            except (TypeError, ValueError):
                self._violation("state_snapshots", label, "state_data is not JSON", "skipped")
                t.skip("state_data is not JSON")
                continue
            if not isinstance(state, dict):
                state = {"value": state}
                t.adjusted["non-object state wrapped as {value: ...}"] += 1
            group = row.get("group_id") if has_group else None
            if group is None:
                candidate = state.get("group") if state_type == "group_status" else None
                if valid_group_id(candidate):
                    group = candidate
                    t.adjusted["group_id taken from state_data.group (no group_id column)"] += 1
                else:
                    group = "global"
            if not valid_group_id(group, scope=True):
                self._violation("state_snapshots", label, f"group_id {group!r} invalid", "imported as global")
                group = "global"
            version_row = self.target.db.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM state_snapshots"
                " WHERE session_id = ? AND state_type = ? AND group_id = ?", (sid, state_type, group)).fetchone()
            new_id = self.target.insert("state_snapshots", {
                "session_id": sid, "state_type": state_type, "group_id": group, "version": int(version_row[0]),
                "state": canonical_json(state),
                "saved_at": utc_text(row.get("timestamp")) or self._session_created(sid),
            })
            self._record(sid, key, digest, "state_snapshots", new_id, {})
            t.imported += 1

    # -- tokens -------------------------------------------------------------------------------------

    def _tokens(self, t: TableReport) -> None:
        for row in self._rows("token_usage", "id"):
            t.source_rows += 1
            self.advance(1)
            sid = self._session_of(t, row)
            if sid is None:
                continue
            key = f"token_usage:{row['id']}"
            digest = row_digest(row)
            if self._seen(t, sid, key, digest):
                continue
            label = f"{sid}/tokens {row['id']}"
            agent = normalise_agent_type(row.get("agent_type"))
            tokens = row.get("tokens_estimated")
            if agent is None or not isinstance(tokens, int) or tokens < 0:
                self._violation("token_usage", label, f"agent_type {agent!r} / tokens {tokens!r} invalid", "skipped")
                t.skip("invalid agent_type or token count")
                continue
            if agent != row.get("agent_type"):
                t.adjusted[f"agent_type {row.get('agent_type')!r} -> {agent!r}"] += 1
            t.adjusted["tokens_estimated -> input_tokens"] += 1
            new_id = self.target.insert("token_usage", {
                "session_id": sid, "agent_type": agent, "agent_id": row.get("agent_id"), "input_tokens": tokens,
                "timestamp": utc_text(row.get("timestamp")) or self._session_created(sid),
            })
            self._record(sid, key, digest, "token_usage", new_id, {})
            t.imported += 1

    # -- context packages ---------------------------------------------------------------------------

    def _ledger_id(self, sid: str, key: str) -> Any:
        hit = self.target.ledger_get(OPERATION, sid, key)
        return None if hit is None else hit[1].get("id")

    def _packages(self, t: TableReport) -> None:
        for row in self._rows("context_packages", "id"):
            t.source_rows += 1
            self.advance(1)
            sid = self._session_of(t, row)
            if sid is None:
                continue
            key = f"context_packages:{row['id']}"
            digest = row_digest(row)
            if self._seen(t, sid, key, digest):
                new = self._ledger_id(sid, key)
                if isinstance(new, int):
                    self.package_map[int(row["id"])] = new
                continue
            label = f"{sid}/package {row['id']}"
            mapped, extra = self._map_package(row, label, t)
            if mapped is None:
                continue
            new_id = self.target.insert("context_packages", mapped)
            self.package_map[int(row["id"])] = new_id
            if mapped.get("supersedes") is not None:
                self.target.db.execute("UPDATE context_packages SET superseded_by = ? WHERE package_id = ?",
                                       (new_id, mapped["supersedes"]))
            self._record(sid, key, digest, "context_packages", new_id, extra)
            t.imported += 1

    def _map_package(self, row: dict[str, Any], label: str,
                     t: TableReport) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        extra: dict[str, Any] = {}
        package_type = row.get("package_type")
        if package_type not in PACKAGE_TYPES:
            self._violation("context_packages", label, f"package_type {package_type!r} unknown", "skipped")
            t.skip("unknown package_type")
            return None, extra
        priority = row.get("priority") or "medium"
        if priority not in PRIORITIES:
            self._violation("context_packages", label, f"priority {priority!r} unknown", "imported as medium")
            extra["priority"] = priority
            priority = "medium"
        summary = row.get("summary")
        producer = normalise_agent_type(row.get("producer_agent"))
        if not isinstance(summary, str) or not summary.strip() or not producer:
            self._violation("context_packages", label, "no summary or producer_agent", "skipped")
            t.skip("no summary or producer")
            return None, extra
        file_path = row.get("file_path")
        if not isinstance(file_path, str) or not file_path:
            self._violation("context_packages", label, "no file_path (and BAZINGA stores no content)", "skipped")
            t.skip("no file_path")
            return None, extra
        group = row.get("group_id")
        scope = row.get("scope") or "group"
        if scope == "global" or group is None:
            if group is not None:
                extra["group_id"] = group
            if group is None:
                t.adjusted["group_id NULL (global package) -> 'global'"] += 1
            group = "global"
        elif not valid_group_id(group, scope=True):
            self._violation("context_packages", label, f"group_id {group!r} invalid", "imported as global")
            extra["group_id"] = group
            group = "global"
        size = row.get("size_bytes")
        if size is not None and (not isinstance(size, int) or size < 0):
            self._violation("context_packages", label, f"size_bytes {size!r} invalid", "imported as NULL")
            size = None
        version = row.get("version") or 1
        if not isinstance(version, int) or version < 1:
            self._violation("context_packages", label, f"version {version!r} invalid", "imported as 1")
            version = 1
        supersedes = None
        if row.get("supersedes_id") is not None:
            supersedes = self.package_map.get(int(row["supersedes_id"]))
            taken = supersedes is not None and self.target.db.execute(
                "SELECT superseded_by FROM context_packages WHERE package_id = ?", (supersedes,)).fetchone()[0]
            if supersedes is None or taken:
                self._violation("context_packages", label,
                                f"supersedes package {row['supersedes_id']} which was not imported or is already "
                                "superseded", "imported without supersedes")
                extra["supersedes_id"] = row["supersedes_id"]
                supersedes = None
        if producer != row.get("producer_agent"):
            t.adjusted[f"producer {row.get('producer_agent')!r} -> {producer!r}"] += 1
        return {
            "session_id": row["session_id"], "group_id": group, "package_type": package_type, "priority": priority,
            "producer": producer, "summary": summary, "content": None, "file_path": file_path, "size_bytes": size,
            "version": version, "supersedes": supersedes, "redacted": 0,
            "created_at": utc_text(row.get("created_at")) or self._session_created(row["session_id"]),
        }, extra

    def _consumers(self, t: TableReport) -> None:
        rows = [dict(r) for r in self.src.execute(
            "SELECT c.*, p.session_id AS session_id FROM context_package_consumers c"
            " LEFT JOIN context_packages p ON p.id = c.package_id ORDER BY c.id")]
        for row in rows:
            t.source_rows += 1
            self.advance(1)
            sid = self._session_of(t, row)
            if sid is None:
                continue
            key = f"context_package_consumers:{row['id']}"
            digest = row_digest(row)
            if self._seen(t, sid, key, digest):
                continue
            label = f"{sid}/package {row['package_id']} consumer {row['id']}"
            package = self.package_map.get(int(row["package_id"]))
            if package is None:
                t.skip("its package was not imported")
                continue
            agent = normalise_agent_type(row.get("agent_type"))
            if not agent:
                self._violation("context_package_consumers", label, "no agent_type", "skipped")
                t.skip("no agent_type")
                continue
            iteration = row.get("iteration")
            if iteration is not None and (not isinstance(iteration, int) or iteration < 0):
                self._violation("context_package_consumers", label, f"iteration {iteration!r} invalid",
                                "imported as NULL")
                iteration = None
            if self.target.db.execute("SELECT 1 FROM context_package_consumers WHERE package_id = ? AND agent_type = ?",
                                      (package, agent)).fetchone():
                t.skip("this agent is already a consumer of the package (Baton keeps one row per package and agent)")
                continue
            self.target.insert("context_package_consumers", {
                "package_id": package, "agent_type": agent, "consumed_at": utc_text(row.get("consumed_at")),
                "consumed_by": None, "iteration": iteration,
            })
            self._record(sid, key, digest, "context_package_consumers", [package, agent], {})
            t.imported += 1

    def _consumption(self, t: TableReport) -> None:
        for row in self._rows("consumption_scope", "rowid"):
            t.source_rows += 1
            self.advance(1)
            sid = self._session_of(t, row)
            if sid is None:
                continue
            key = f"consumption_scope:{row['scope_id']}"
            digest = row_digest(row)
            if self._seen(t, sid, key, digest):
                continue
            label = f"{sid}/consumption {row['scope_id']}"
            package = self.package_map.get(int(row["package_id"]))
            if package is None:
                t.skip("its package was not imported")
                continue
            agent = normalise_agent_type(row.get("agent_type"))
            group = row.get("group_id") or "global"
            iteration = row.get("iteration")
            if not agent or not isinstance(iteration, int) or iteration < 0 or not valid_group_id(group, scope=True):
                self._violation("consumption_scope", label,
                                f"agent_type {agent!r} / group_id {group!r} / iteration {iteration!r} invalid",
                                "skipped")
                t.skip("invalid agent_type, group_id or iteration")
                continue
            if self.target.db.execute(
                    "SELECT 1 FROM context_consumption WHERE package_id = ? AND agent_type = ? AND group_id = ?"
                    " AND iteration = ?", (package, agent, group, iteration)).fetchone():
                t.skip("this (package, agent, group, iteration) is already recorded in the target")
                continue
            new_id = self.target.insert("context_consumption", {
                "session_id": sid, "package_id": package, "agent_type": agent, "agent_id": None, "group_id": group,
                "iteration": iteration, "tokens": None,
                "consumed_at": utc_text(row.get("consumed_at")) or self._session_created(sid),
            })
            self._record(sid, key, digest, "context_consumption", new_id, {})
            t.imported += 1

    # -- skill outputs ------------------------------------------------------------------------------

    def _skill_outputs(self, t: TableReport) -> None:
        for row in self._rows("skill_outputs", "id"):
            t.source_rows += 1
            self.advance(1)
            sid = self._session_of(t, row)
            if sid is None:
                continue
            key = f"skill_outputs:{row['id']}"
            digest = row_digest(row)
            if self._seen(t, sid, key, digest):
                continue
            label = f"{sid}/skill output {row['id']}"
            skill = row.get("skill_name")
            if not isinstance(skill, str) or not SKILL_NAME.match(skill):
                self._violation("skill_outputs", label, f"skill_name {skill!r} invalid", "skipped")
                t.skip("invalid skill_name")
                continue
            agent = normalise_agent_type(row.get("agent_type")) or ""
            group = row.get("group_id")
            if group is None:
                group = "global"
                t.adjusted["group_id NULL -> 'global'"] += 1
            elif not valid_group_id(group, scope=True):
                self._violation("skill_outputs", label, f"group_id {group!r} invalid", "skipped")
                t.skip("invalid group_id")
                continue
            iteration = row.get("iteration")
            if iteration is None:
                iteration = 1
                t.adjusted["iteration NULL -> 1"] += 1
            if not isinstance(iteration, int) or iteration < 1:
                self._violation("skill_outputs", label, f"iteration {iteration!r} invalid", "skipped")
                t.skip("invalid iteration")
                continue
            try:
                output = canonical_json(json.loads(row["output_data"]))
            except (TypeError, ValueError):
                self._violation("skill_outputs", label, "output_data is not JSON", "kept as {\"raw\": ...}")
                output = canonical_json({"raw": row.get("output_data")})
            text, was_redacted = redact(output)
            if was_redacted:
                t.adjusted["secret redacted on import"] += 1
                try:
                    json.loads(text)
                except ValueError:
                    text = canonical_json({"_redacted_json": text})
            if self.target.db.execute(
                    "SELECT 1 FROM skill_outputs WHERE session_id = ? AND skill_name = ? AND agent_type = ?"
                    " AND group_id = ? AND iteration = ?", (sid, skill, agent, group, iteration)).fetchone():
                self._violation("skill_outputs", label, f"{skill}/{agent}/{group} iteration {iteration} "
                                "is already in the target", "skipped")
                t.skip("same skill, agent, group and iteration already in the target")
                continue
            new_id = self.target.insert("skill_outputs", {
                "session_id": sid, "skill_name": skill, "agent_type": agent, "group_id": group,
                "iteration": iteration, "output": text, "redacted": int(was_redacted),
                "created_at": utc_text(row.get("timestamp")) or self._session_created(sid),
            })
            self._record(sid, key, digest, "skill_outputs", new_id, {})
            t.imported += 1

    # -- development plans --------------------------------------------------------------------------

    def _plans(self, t: TableReport) -> None:
        phases_t = self.report.table("development_plans.phases", "plan_phases")
        phases_t.target_before = self.target.count("plan_phases")
        for row in self._rows("development_plans", "id"):
            t.source_rows += 1
            self.advance(1)
            label = f"{row.get('session_id')}/plan {row['id']}"
            phases = self._plan_phases(row, label)
            phases_t.source_rows += len(phases)
            sid = self._session_of(t, row)
            if sid is None:
                for _ in phases:
                    phases_t.skip("its plan was skipped")
                continue
            key = f"development_plans:{row['id']}"
            digest = row_digest(row)
            if self._seen(t, sid, key, digest):
                for _ in phases:
                    phases_t.skip("already imported with its plan")
                continue
            plan_text = row.get("plan_text")
            problem = None
            if not isinstance(plan_text, str) or not plan_text.strip():
                problem = "empty plan_text"
            elif self.target.db.execute("SELECT 1 FROM development_plans WHERE session_id = ?", (sid,)).fetchone():
                problem = "the target session already has a development plan"
            elif not phases:
                problem = "phases is not a JSON array of phase objects"
            if problem:
                self._violation("development_plans", label, problem, "skipped")
                t.skip(problem)
                for _ in phases:
                    phases_t.skip("its plan was skipped")
                continue
            self._insert_plan(sid, row, phases, label, t, phases_t)
            self._record(sid, key, digest, "development_plans", self._plan_id(sid), {})
            t.imported += 1

    def _plan_id(self, sid: str) -> int:
        return int(self.target.db.execute("SELECT plan_id FROM development_plans WHERE session_id = ?",
                                          (sid,)).fetchone()[0])

    def _plan_phases(self, row: dict[str, Any], label: str) -> list[dict[str, Any]]:
        try:
            phases = json.loads(row.get("phases") or "null")
        except ValueError:
            return []
        if not isinstance(phases, list):
            return []
        return [p if isinstance(p, dict) else {"name": str(p)} for p in phases]

    def _insert_plan(self, sid: str, row: dict[str, Any], phases: list[dict[str, Any]], label: str,
                     t: TableReport, phases_t: TableReport) -> None:
        try:
            metadata = json.loads(row.get("metadata") or "{}")
        except ValueError:
            self._violation("development_plans", label, "metadata is not JSON", "kept as metadata.raw")
            metadata = {"raw": row.get("metadata")}
        if not isinstance(metadata, dict):
            metadata = {"value": metadata}
        created = utc_text(row.get("created_at")) or self._session_created(sid)
        updated = utc_text(row.get("updated_at")) or created
        info = self.sessions[sid]
        provenance: dict[str, Any] = {"plan_id": row["id"], "current_phase": row.get("current_phase"),
                                      "total_phases": row.get("total_phases"), "phases": {}}
        rows: list[dict[str, Any]] = []
        used_numbers: set[int] = set()
        used_names: set[str] = set()
        for phase in phases:
            number = phase.get("phase")
            if not isinstance(number, int) or number < 1 or number in used_numbers:
                number = max(used_numbers, default=0) + 1
                phases_t.adjusted["phase number missing or repeated: renumbered"] += 1
            name = phase.get("name")
            if not isinstance(name, str) or not name.strip():
                name = f"Phase {number}"
                phases_t.adjusted["phase without a name: 'Phase N'"] += 1
            if name in used_names:
                name = f"{name} ({number})"
                phases_t.adjusted["repeated phase name: number appended"] += 1
            status = phase.get("status") or "pending"
            if status not in PHASE_STATUSES:
                self._violation("development_plans", f"{label}/phase {number}", f"status {status!r} unknown",
                                "imported as pending")
                status = "pending"
            completed = phase.get("completed_at")
            completed_at = None
            if isinstance(completed, str):
                try:
                    completed_at = local_text(completed, info.offset)
                    phases_t.adjusted[f"completed_at read as local time {format_offset(info.offset)}"] += 1
                    self.report.note(f"{label} phase {number}: completed_at {completed} read as local time "
                                     f"UTC{format_offset(info.offset)} -> {completed_at}")
                except InvalidInput:
                    self._violation("development_plans", f"{label}/phase {number}",
                                    f"completed_at {completed!r} is not a timestamp", "kept in metadata only")
            known = {"phase", "name", "status", "completed_at", "description"}
            rest = {k: v for k, v in phase.items() if k not in known}
            if completed is not None:
                rest["completed_at"] = completed
            if rest:
                provenance["phases"][str(number)] = rest
            used_numbers.add(number)
            used_names.add(name)
            description = phase.get("description")
            rows.append({"phase_number": number, "name": name,
                         "description": description if isinstance(description, str) else None,
                         "status": status, "completed_at": completed_at if status == "completed" else None,
                         "updated_at": updated})
            if completed_at and status != "completed":
                phases_t.adjusted["completed_at of a phase not completed kept in metadata only"] += 1
        metadata["bazinga_import"] = provenance
        if isinstance(row.get("current_phase"), int):
            t.adjusted["current_phase/total_phases kept in metadata (Baton derives them from the phases)"] += 1
        cursor = self.target.db.execute(
            "INSERT INTO development_plans (session_id, original_prompt, plan_text, metadata, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (sid, row.get("original_prompt"), row["plan_text"], canonical_json(metadata), created, updated))
        for phase_row in rows:
            self.target.insert("plan_phases", {"plan_id": cursor.lastrowid, **phase_row})
            phases_t.imported += 1

    # -- learning (project-level) -------------------------------------------------------------------

    def _learning_project(self, row: dict[str, Any]) -> str | None:
        project = self.options.project or row.get("project_id")
        return project if isinstance(project, str) and project.strip() else None

    def _error_patterns(self, t: TableReport) -> None:
        for row in self._rows("error_patterns", "rowid"):
            t.source_rows += 1
            self.advance(1)
            project = self._learning_project(row)
            label = f"{row.get('project_id')}/pattern {str(row.get('pattern_hash'))[:16]}"
            if project is None:
                self._violation("error_patterns", label, "no project_id", "skipped")
                t.skip("no project")
                continue
            key = f"error_patterns:{row.get('pattern_hash')}:{row.get('project_id')}"
            digest = row_digest(row)
            if self._seen(t, f"project:{project}", key, digest):
                continue
            signature = str(row.get("pattern_hash") or "")
            if not re.fullmatch(r"[0-9a-f]{64}", signature):
                signature = hashlib.sha256(signature.encode()).hexdigest()
                t.adjusted["pattern_hash not a SHA-256: hashed"] += 1
            try:
                parsed = json.loads(row.get("signature_json") or "{}")
            except ValueError:
                self._violation("error_patterns", label, "signature_json is not JSON", "kept as the message")
                parsed = {"message_pattern": row.get("signature_json")}
            if not isinstance(parsed, dict):
                parsed = {"message_pattern": json.dumps(parsed)}
            message = parsed.get("message_pattern") or parsed.get("error_type") or signature
            extra = {k: v for k, v in parsed.items() if k not in {"message_pattern", "error_type"}}
            confidence = row.get("confidence")
            if not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
                self._violation("error_patterns", label, f"confidence {confidence!r} invalid", "imported as 0.5")
                confidence = 0.5
            occurrences = row.get("occurrences") or 1
            ttl = row.get("ttl_days")
            if ttl is not None and (not isinstance(ttl, int) or ttl < 1):
                ttl = None
            if self.target.db.execute("SELECT 1 FROM error_patterns WHERE project = ? AND signature = ?",
                                      (project, signature)).fetchone():
                t.skip("this pattern is already in the target (not from this import)")
                continue
            message_text, was_redacted = redact(str(message))
            solution, solution_redacted = redact(row["solution"]) if row.get("solution") else (None, False)
            first = utc_text(row.get("created_at")) or utc_text(row.get("last_seen"))
            last = utc_text(row.get("last_seen")) or first
            if first is None or last is None:
                self._violation("error_patterns", label, "no created_at or last_seen", "skipped")
                t.skip("no timestamps")
                continue
            new_id = self.target.insert("error_patterns", {
                "project": project, "signature": signature, "normalized_message": message_text,
                "example_message": message_text, "error_type": parsed.get("error_type"), "solution": solution,
                "agent_type": None, "occurrences": int(occurrences), "confidence": float(confidence),
                "ttl_days": ttl, "redacted": int(was_redacted or solution_redacted), "first_seen": first,
                "last_seen": last, "last_session_id": None, "lang": row.get("lang") or None,
            })
            self._record(f"project:{project}", key, digest, "error_patterns", new_id, extra)
            t.imported += 1

    def _strategies(self, t: TableReport) -> None:
        for row in self._rows("strategies", "created_at, rowid"):
            t.source_rows += 1
            self.advance(1)
            project = self._learning_project(row)
            label = f"{row.get('project_id')}/strategy {row.get('strategy_id')}"
            if project is None:
                self._violation("strategies", label, "no project_id", "skipped")
                t.skip("no project")
                continue
            key = f"strategies:{row.get('strategy_id')}"
            digest = row_digest(row)
            if self._seen(t, f"project:{project}", key, digest):
                continue
            topic, insight = row.get("topic"), row.get("insight")
            if not isinstance(topic, str) or not topic.strip() or not isinstance(insight, str) or not insight.strip():
                self._violation("strategies", label, "empty topic or insight", "skipped")
                t.skip("empty topic or insight")
                continue
            insight, was_redacted = redact(insight)
            same = self.target.db.execute("SELECT strategy_id FROM strategies WHERE project = ? AND topic = ?"
                                          " AND insight = ?", (project, topic, insight)).fetchone()
            if same:
                t.skip("the same strategy (topic and insight) is already in the target")
                continue
            final_topic = self._free_topic(project, topic, row)
            if final_topic != topic:
                t.adjusted["topic already taken in the project: imported under a qualified topic"] += 1
                self.report.note(f"strategy {row.get('strategy_id')}: project {project!r} already has a strategy on "
                                 f"topic {topic!r} (Baton keeps one per topic); imported as topic {final_topic!r}")
            helpfulness = row.get("helpfulness")
            if not isinstance(helpfulness, int) or helpfulness < 0:
                helpfulness = 0
            created = utc_text(row.get("created_at")) or utc_text(row.get("last_seen"))
            if created is None:
                self._violation("strategies", label, "no created_at or last_seen", "skipped")
                t.skip("no timestamps")
                continue
            new_id = self.target.insert("strategies", {
                "project": project, "topic": final_topic, "insight": insight, "agent_type": None,
                "helpfulness": helpfulness, "redacted": int(was_redacted), "created_at": created,
                "updated_at": utc_text(row.get("last_seen")) or created, "last_session_id": None,
                "lang": row.get("lang") or None, "framework": row.get("framework") or None,
            })
            self._record(f"project:{project}", key, digest, "strategies", new_id,
                         {"topic": topic} if final_topic != topic else {})
            t.imported += 1

    def _free_topic(self, project: str, topic: str, row: dict[str, Any]) -> str:
        def taken(candidate: str) -> bool:
            return self.target.db.execute("SELECT 1 FROM strategies WHERE project = ? AND topic = ?",
                                          (project, candidate)).fetchone() is not None

        if not taken(topic):
            return topic
        qualifier = "/".join(str(v) for v in (row.get("lang"), row.get("framework")) if v)
        candidates = [f"{topic} ({qualifier})"] if qualifier else []
        candidates.append(f"{topic} ({row.get('strategy_id')})")
        for candidate in candidates:
            if not taken(candidate):
                return candidate
        return f"{topic} ({row_digest(row)[:12]})"

    # -- tables with no Baton counterpart yet --------------------------------------------------------

    def _not_imported(self) -> None:
        for name in sorted(self.tables - self.handled - INTERNAL_TABLES):
            t = self.report.table(name, "-")
            t.source_rows = int(self.src.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0])
            self.advance(t.source_rows)
            if name in SEED_TABLES:
                reason = "BAZINGA's seeded workflow configuration: Baton ships its own (see `baton workflow`)"
            else:
                reason = "no Baton counterpart (reported, not imported)"
            for _ in range(t.source_rows):
                t.skip(reason)


def run_import_bazinga(db: Path, args: Any) -> Report:
    """`baton import bazinga PATH`: the whole import in one transaction on the target."""
    from baton.transfer.cli import check_not_same, finish
    from baton.transfer.common import open_source, parse_offset
    from baton.transfer.report import progress

    source = Path(args.path)
    check_not_same(source, db)
    options = Options(local_offset=parse_offset(args.local_offset) if args.local_offset else None,
                      project=args.project)
    report = Report("import bazinga", str(source), str(db), args.dry_run)
    with open_source(source) as src:
        if not is_bazinga(src):
            raise InvalidInput(f"{source} is not a BAZINGA database (no sessions / orchestration_logs tables)")
        with Target(db, dry_run=args.dry_run) as target, progress(count_rows(src), "importing BAZINGA") as advance:
            BazingaImport(src, target, report, source, options, advance).run()
            return finish(report, target, strict=args.strict)
