"""Whether two bundles of one session id are the same session, one copy further along than the other.

A database copied (a worktree, another machine) and written on afterwards holds the session as it
was at the copy plus what came after. `extends(longer, shorter)` recognises that: what never
changes is equal (the session's requirements, project, mode, creation), every append-only list of
the shorter copy (logs, state versions, token usage, consumption, skill outputs, packages) is the
start of the longer one's, and every row that can change (task groups, criteria, plan phases,
package consumers, the session's status) is in the longer copy unchanged or changed later, never
earlier. Anything else is a true conflict: both copies were written after they parted.
"""

from __future__ import annotations

from typing import Any

from baton.tools._common import TERMINAL_STATUSES

FIXED = ("project", "mode", "requirements", "initial_branch", "metadata", "created_at")
APPEND_ONLY = ("logs", "state_snapshots", "token_usage")
APPEND_ONLY_DOMAIN = ("context_consumption", "skill_outputs")
KEYED = {"task_groups": "group_id", "success_criteria": "criterion"}


def extends(longer: dict[str, Any], shorter: dict[str, Any]) -> str | None:
    """None when `longer` is `shorter` continued; otherwise the first difference that says it is not."""
    old, new = shorter["session"], longer["session"]
    for key in FIXED:
        if old.get(key) != new.get(key):
            return f"the session's {key} differs"
    if old.get("status") in TERMINAL_STATUSES and new.get("status") != old.get("status"):
        return f"one copy is {old.get('status')}, the other {new.get('status')}"
    if _later(old, new):
        return "the session's status changed in both copies"
    domain = longer.get("format_version") == shorter.get("format_version") == 2
    for table in (*APPEND_ONLY, *(APPEND_ONLY_DOMAIN if domain else ())):
        problem = _prefix(table, shorter.get(table) or [], longer.get(table) or [])
        if problem:
            return problem
    for table, key in KEYED.items():
        problem = _keyed(table, key, shorter.get(table) or [], longer.get(table) or [])
        if problem:
            return problem
    if domain:
        return _packages(shorter.get("context_packages") or [], longer.get("context_packages") or []) or _plan(
            shorter.get("development_plan"), longer.get("development_plan"))
    return None


def _later(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """`old` was changed after `new` was (ISO-8601 UTC times compare as text)."""
    return str(old.get("updated_at") or "") > str(new.get("updated_at") or "")


def _prefix(table: str, short: list[Any], long: list[Any]) -> str | None:
    for index, row in enumerate(short):
        if index >= len(long) or long[index] != row:
            return f"{table} differ from entry {index + 1} (the copies have {len(short)} and {len(long)})"
    return None


def _keyed(table: str, key: str, short: list[dict[str, Any]], long: list[dict[str, Any]]) -> str | None:
    rows = {row.get(key): row for row in long}
    for row in short:
        other = rows.get(row.get(key))
        if other is None:
            return f"{table} {row.get(key)!r} is in one copy only"
        if other != row and (other.get("created_at") != row.get("created_at") or _later(row, other)):
            return f"{table} {row.get(key)!r} changed in both copies"
    return None


def _packages(short: list[dict[str, Any]], long: list[dict[str, Any]]) -> str | None:
    """Packages are appended; only their consumers' marks change (a mark, once set, stays)."""
    for index, package in enumerate(short):
        other = long[index] if index < len(long) else None
        fixed = {k: v for k, v in package.items() if k != "consumers"}
        if other is None or {k: v for k, v in other.items() if k != "consumers"} != fixed:
            return f"context_packages differ from entry {index + 1}"
        marks = {c.get("agent_type"): c for c in other.get("consumers") or []}
        for consumer in package.get("consumers") or []:
            mark = marks.get(consumer.get("agent_type"))
            if mark is None or (consumer.get("consumed_at") is not None and mark != consumer):
                return f"context package {index + 1}'s consumers differ"
    return None


def _plan(short: dict[str, Any] | None, long: dict[str, Any] | None) -> str | None:
    if short is None:
        return None
    if long is None:
        return "one copy has no development plan"
    if any(short.get(k) != long.get(k) for k in ("original_prompt", "plan_text", "metadata", "created_at")):
        return "the development plans differ"
    phases = {p.get("phase_number"): p for p in long.get("phases") or []}
    for phase in short.get("phases") or []:
        other = phases.get(phase.get("phase_number"))
        if other is None or other.get("name") != phase.get("name") or (other != phase and _later(phase, other)):
            return f"plan phase {phase.get('phase_number')} changed in both copies"
    return None
