"""`baton merge`: a Baton source's learning (error patterns, strategies) merged by project.

- An error pattern is the same pattern when its project and signature (the SHA-256 of the
  normalised message) are equal: occurrences, success_count and failure_count are added, and
  confidence is the Laplace estimate of the summed counts. A strategy is the same strategy when
  project, topic and insight are equal: helpfulness is added. A strategy whose topic the target
  uses for another insight comes in as `<topic> (<first 8 hex of sha256(insight)>)`.
- Counts are added once per origin. A row's origin is where it was first written: its project,
  key and creation time (`first_seen`, `created_at`). A database copied from another (a worktree,
  a backup) holds the same origins with the counts they had at the copy, so adding them again
  would count that history twice. For each row it merged into, the target keeps what every origin
  has contributed so far (one ledger row in idempotency_keys: scope `project:<project>`, operation
  `merge-learning`), and a source adds only what its origin has beyond that. Merging a source
  again adds nothing; two copies of one database count their shared history once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from baton.clock import utc_now
from baton.transfer.common import Target, table_columns
from baton.transfer.report import Report

LEDGER = "merge-learning"
PATTERN_COUNTS = ("occurrences", "success_count", "failure_count")
STRATEGY_COUNTS = ("helpfulness",)
# Descriptive columns: the target's value stays; a missing one is filled from the source.
PATTERN_FILLED = ("error_type", "agent_type", "lang")  # not ttl_days: NULL there means "never expires"
STRATEGY_FILLED = ("agent_type", "lang", "framework")


def merge_learning(src: sqlite3.Connection, target: Target, report: Report) -> None:
    for table in ("error_patterns", "strategies"):
        report.table(table, table).target_before = target.count(table)
    if _has(src, "error_patterns"):
        _patterns(src, target, report)
    if _has(src, "strategies"):
        _strategies(src, target, report)
    for table in ("error_patterns", "strategies"):
        report.table(table, table).target_after = target.count(table)


def _has(src: sqlite3.Connection, table: str) -> bool:
    return src.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None


def _rows(src: sqlite3.Connection, table: str, target: Target, order: str) -> list[dict[str, Any]]:
    """The source's rows, with the columns both databases have (an older source lacks later ones)."""
    shared = [c for c in table_columns(src, table) if c in set(table_columns(target.db, table))]
    columns = ", ".join(c for c in shared if not c.endswith("_id") or c == "last_session_id")
    return [dict(r) for r in src.execute(f"SELECT {columns} FROM {table} ORDER BY {order}")]


def _patterns(src: sqlite3.Connection, target: Target, report: Report) -> None:
    t = report.table("error_patterns", "error_patterns")
    for row in _rows(src, "error_patterns", target, "pattern_id"):
        t.source_rows += 1
        existing = target.db.execute("SELECT * FROM error_patterns WHERE project = ? AND signature = ?",
                                     (row["project"], row["signature"])).fetchone()
        if existing is None:
            target.insert("error_patterns", row)
            t.imported += 1
            continue
        origin = str(row["first_seen"])
        added = _add(target, row["project"], f"error_patterns:{existing['pattern_id']}", dict(existing), row, origin,
                     "first_seen", PATTERN_COUNTS)
        if not any(added.values()):
            t.skip("already counted in the target (same pattern, same origin)")
            continue
        merged = {c: existing[c] + added[c] for c in PATTERN_COUNTS}
        changes: dict[str, Any] = {**merged, **_filled(dict(existing), row, PATTERN_FILLED)}
        if added["success_count"] or added["failure_count"]:
            changes["confidence"] = (merged["success_count"] + 1) / (merged["success_count"] + merged["failure_count"]
                                                                     + 2)
        changes["first_seen"] = min(existing["first_seen"], row["first_seen"])
        if row["last_seen"] > existing["last_seen"]:
            changes["last_seen"] = row["last_seen"]
            changes["solution"] = row["solution"] or existing["solution"]
            changes["last_session_id"] = row.get("last_session_id") or existing["last_session_id"]
        elif existing["solution"] is None:
            changes["solution"] = row["solution"]
        changes["redacted"] = max(existing["redacted"], row["redacted"])
        _update(target, "error_patterns", "pattern_id", existing["pattern_id"], changes)
        t.imported += 1
        t.adjusted["merged into the target's pattern (counts added)"] += 1


def _strategies(src: sqlite3.Connection, target: Target, report: Report) -> None:
    t = report.table("strategies", "strategies")
    for row in _rows(src, "strategies", target, "strategy_id"):
        t.source_rows += 1
        topic = row["topic"]
        existing = _strategy(target, row["project"], topic)
        if existing is not None and existing["insight"] != row["insight"]:
            topic = f"{topic} ({hashlib.sha256(row['insight'].encode()).hexdigest()[:8]})"
            existing = _strategy(target, row["project"], topic)
            t.adjusted["topic taken by another insight in the target: merged under a qualified topic"] += 1
        if existing is None:
            target.insert("strategies", {**row, "topic": topic})
            t.imported += 1
            continue
        added = _add(target, row["project"], f"strategies:{existing['strategy_id']}", dict(existing), row,
                     str(row["created_at"]), "created_at", STRATEGY_COUNTS)
        if not added["helpfulness"]:
            t.skip("already counted in the target (same strategy, same origin)")
            continue
        changes: dict[str, Any] = {"helpfulness": existing["helpfulness"] + added["helpfulness"],
                                   **_filled(dict(existing), row, STRATEGY_FILLED),
                                   "redacted": max(existing["redacted"], row["redacted"])}
        if row["updated_at"] > existing["updated_at"]:
            changes["updated_at"] = row["updated_at"]
            changes["last_session_id"] = row.get("last_session_id") or existing["last_session_id"]
        _update(target, "strategies", "strategy_id", existing["strategy_id"], changes)
        t.imported += 1
        t.adjusted["merged into the target's strategy (helpfulness added)"] += 1


def _strategy(target: Target, project: str, topic: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = target.db.execute("SELECT * FROM strategies WHERE project = ? AND topic = ?",
                                                (project, topic)).fetchone()
    return row


def _add(target: Target, project: str, key: str, existing: dict[str, Any], row: dict[str, Any], origin: str,
         created: str, counts: tuple[str, ...]) -> dict[str, int]:
    """What `row` (from `origin`) adds to the target's `existing` row; the ledger records it. The ledger
    is keyed by the target row's id, which is never reused: a pruned and re-learned pattern starts afresh."""
    scope = f"project:{project}"
    ledger = target.ledger_get(LEDGER, scope, key)
    state: dict[str, Any] = ledger[1] if ledger else {"native": str(existing[created]), "merged": {}}
    merged: dict[str, list[int]] = state["merged"]
    if origin == state["native"]:
        # The target's own row: what it holds beyond the other origins' contributions is this origin's.
        present = [max(0, existing[c] - sum(m[i] for m in merged.values())) for i, c in enumerate(counts)]
    else:
        present = merged.get(origin, [0] * len(counts))
    added = {c: max(0, int(row[c]) - present[i]) for i, c in enumerate(counts)}
    if any(added.values()):
        if origin != state["native"]:
            merged[origin] = [present[i] + added[c] for i, c in enumerate(counts)]
        target.db.execute(
            "INSERT INTO idempotency_keys (session_id, operation, key, request_hash, response, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (session_id, operation, key) DO UPDATE SET response = excluded.response",
            (scope, LEDGER, key, hashlib.sha256(key.encode()).hexdigest(), json.dumps(state, sort_keys=True),
             utc_now()))
    return added


def _filled(existing: dict[str, Any], row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: row[c] for c in columns if c in row and existing.get(c) is None and row[c] is not None}


def _update(target: Target, table: str, key: str, value: int, changes: dict[str, Any]) -> None:
    target.db.execute(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in changes)} WHERE {key} = ?",
                      (*changes.values(), value))
