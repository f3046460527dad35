"""The operations, one module per area. Importing this package fills the operation table."""

from __future__ import annotations

from baton.operations import Operation, registry
from baton.tools import (
    context,
    criteria,
    dashboard,
    groups,
    learning,
    logs,
    plans,
    projects,
    routing,
    search,
    sessions,
    skills,
    state,
    tokens,
)

_MODULES = (
    sessions, logs, groups, criteria, state, tokens, dashboard,
    context, skills, learning, plans, routing, search, projects,
)


def catalog() -> dict[str, Operation]:
    """Every operation by name, in catalog order: by module as listed above, then as declared."""
    order = {module.__name__: index for index, module in enumerate(_MODULES)}
    ops = sorted(registry().values(), key=lambda op: order.get(op.handler.__module__, len(order)))
    return {op.name: op for op in ops}


def select(spec: str) -> list[Operation]:
    """Operations for a `--tools` value: `core`, `all`, or a comma-separated list of names."""
    from baton.errors import InvalidInput

    ops = catalog()
    if spec == "all":
        return list(ops.values())
    if spec == "core":
        return [op for op in ops.values() if op.profile == "core"]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in ops]
    if unknown or not names:
        raise InvalidInput(f"unknown tool(s) {unknown}; known: core, all, or any of {', '.join(ops)}")
    return [ops[n] for n in names]
