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
  (`context_references`, `speckit_task_ids`) are kept in the ledger entry (`extra`).
- state_snapshots -> state_snapshots: versions numbered per (session, state_type, group_id) in
  id order (v15 keeps history; v19 keeps the latest only). v15 has no group_id: `group_status`
  rows take it from `state_data.group` when that is a valid group id, else `global`.
- success_criteria -> success_criteria; token_usage -> token_usage (`tokens_estimated` ->
  input_tokens, the only figure BAZINGA records).
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
    Target,
    canonical_json,
    format_offset,
    local_text,
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
            ("task_groups", "task_groups", self._task_groups),
            ("success_criteria", "success_criteria", self._criteria),
            ("orchestration_logs", "logs", self._logs),
            ("state_snapshots", "state_snapshots", self._states),
            ("token_usage", "token_usage", self._tokens),
        ]
        for source_table, target_table, step in steps:
            t = self.report.table(source_table, target_table)
            t.target_before = self.target.count(target_table)
            if source_table in self.tables:
                step(t)
            t.target_after = self.target.count(target_table)
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
        for column in ("context_references", "speckit_task_ids"):
            if row.get(column) is not None:
                extra[column] = row[column]
                t.adjusted[f"{column} kept in the import ledger (no Baton column)"] += 1
        return mapped, extra

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

    # -- tables with no Baton counterpart yet --------------------------------------------------------

    def _not_imported(self) -> None:
        handled = {"sessions", "task_groups", "success_criteria", "orchestration_logs", "state_snapshots",
                   "token_usage"}
        for name in sorted(self.tables - handled - INTERNAL_TABLES):
            t = self.report.table(name, "-")
            t.source_rows = int(self.src.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0])
            self.advance(t.source_rows)
            if name in SEED_TABLES:
                reason = "BAZINGA's seeded workflow configuration: Baton ships its own (see `baton workflow`)"
            else:
                reason = "not mapped by this version of `import bazinga` yet (reported, not imported)"
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
