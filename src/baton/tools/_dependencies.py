"""Task-group dependencies: the graph of a session's groups, its checks, and what blocks a start."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from baton.errors import InvalidInput
from baton.store import fetch_all
from baton.tools._common import load_json

# A dependency is done only when completed: approved_pending_merge is not merged yet, so the work
# that depends on it would start from a base without it. route's spawn_batch uses the same rule.
DEPENDENCY_DONE = "completed"


async def dependency_graph(conn: Any, session_id: str) -> dict[str, tuple[str, list[str]]]:
    """group_id -> (status, depends_on) for every group of the session."""
    rows = await fetch_all(conn, "SELECT group_id, status, depends_on FROM task_groups WHERE session_id = ?",
                           (session_id,))
    return {r["group_id"]: (r["status"], load_json(r["depends_on"])) for r in rows}


def check_dependencies(session_id: str, group_id: str, depends_on: list[str],
                       graph: Mapping[str, tuple[str, list[str]]]) -> None:
    """`depends_on` of `group_id` names existing groups of the session and closes no cycle."""
    unknown = [d for d in depends_on if d not in graph and d != group_id]
    if unknown:
        raise InvalidInput(f"depends_on: no task group {', '.join(unknown)} in session {session_id!r}; create the "
                           "groups it depends on first (see get-task-groups)")
    cycle = _cycle(group_id, depends_on, graph)
    if cycle:
        raise InvalidInput(f"depends_on: {group_id} would depend on itself: {' -> '.join(cycle)}")


def _cycle(group_id: str, depends_on: list[str], graph: Mapping[str, tuple[str, list[str]]]) -> list[str] | None:
    """The shortest dependency path from `group_id` back to itself with its new `depends_on`, if any.
    Only cycles through the changed group can be new."""
    came_from: dict[str, str] = {}
    queue = deque([group_id])
    while queue:
        node = queue.popleft()
        for dep in depends_on if node == group_id else graph.get(node, ("", []))[1]:
            if dep == group_id:
                path = [node]
                while path[-1] != group_id:
                    path.append(came_from[path[-1]])
                return [*reversed(path), group_id]
            if dep not in came_from and dep in graph:
                came_from[dep] = node
                queue.append(dep)
    return None


def unfinished_dependencies(depends_on: list[str], graph: Mapping[str, tuple[str, list[str]]]) -> dict[str, str]:
    """The dependencies that are not done, with their status (`missing` for a group that does not exist)."""
    statuses = {d: graph[d][0] if d in graph else "missing" for d in depends_on}
    return {d: status for d, status in statuses.items() if status != DEPENDENCY_DONE}


def describe(blocking: Mapping[str, str]) -> str:
    shown = ", ".join(f"{g} ({status})" for g, status in list(blocking.items())[:20])
    return f"it depends on {shown}{' and more' if len(blocking) > 20 else ''}, not completed"
