"""The operations, one module per area. A module fills the operation table when it is imported.

Modules are imported when asked for: a CLI process runs one operation and loads only that
operation's module (each module's pydantic models cost start-up time), the server loads them all.
"""

from __future__ import annotations

from importlib import import_module

from baton.operations import Operation, registry

# Module -> the operations it declares, in catalog order. An index, not a definition: each
# operation is defined by its @operation in the module; tests/test_cli.py checks this index
# against what the modules really declare.
OPERATIONS_BY_MODULE: dict[str, tuple[str, ...]] = {
    "sessions": ("create-session", "get-session", "list-sessions", "update-session-status"),
    "logs": ("log-interaction", "log-interactions", "save-reasoning", "save-event", "get-logs"),
    "groups": ("create-task-group", "update-task-group", "get-task-groups"),
    "criteria": ("save-success-criteria", "update-success-criterion", "get-success-criteria"),
    "state": ("save-state", "get-state"),
    "tokens": ("log-tokens", "token-summary"),
    "dashboard": ("dashboard-snapshot", "health"),
    "context": ("save-context-package", "get-context-packages", "mark-context-consumed", "save-consumption"),
    "skills": ("save-skill-output", "get-skill-output"),
    "learning": ("save-error-pattern", "get-error-patterns", "update-error-confidence", "prune-error-patterns",
                 "save-strategy", "get-strategies", "check-mandatory-phases"),
    "plans": ("save-development-plan", "get-development-plan", "update-plan-phase"),
    "routing": ("route",),
    "search": ("search",),
    "projects": ("project-summary",),
}
_MODULE_OF = {name: module for module, names in OPERATIONS_BY_MODULE.items() for name in names}
# The modules that declare the core profile's operations (the default server loads only these).
CORE_MODULES = ("sessions", "logs", "groups", "criteria", "state", "tokens", "dashboard")


def _loaded(modules: tuple[str, ...]) -> dict[str, Operation]:
    """The operations of these modules (imported now), in catalog order: by module as listed in
    OPERATIONS_BY_MODULE, then as declared."""
    for module in modules:
        import_module(f"baton.tools.{module}")
    wanted = {f"baton.tools.{module}" for module in modules}
    order = {f"baton.tools.{module}": index for index, module in enumerate(OPERATIONS_BY_MODULE)}
    ops = sorted((op for op in registry().values() if op.handler.__module__ in wanted),
                 key=lambda op: order[op.handler.__module__])
    return {op.name: op for op in ops}


def catalog() -> dict[str, Operation]:
    """Every operation by name, in catalog order."""
    return _loaded(tuple(OPERATIONS_BY_MODULE))


def find(name: str) -> Operation | None:
    """One operation by name, importing only its module; None if there is no such operation."""
    module = _MODULE_OF.get(name)
    if module is None:
        return None
    import_module(f"baton.tools.{module}")
    return registry()[name]


def select(spec: str) -> list[Operation]:
    """Operations for a `--tools` value: comma-separated profiles (`core`, `all`) and tool names, combined
    (`core,search` is the core profile plus `search`), each operation once, in the order first named."""
    from baton.errors import InvalidInput

    if spec == "all":
        return list(catalog().values())
    if spec == "core":  # start-up time: the full profile's modules are not even imported
        return [op for op in _loaded(CORE_MODULES).values() if op.profile == "core"]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in _MODULE_OF and n not in ("core", "all")]
    if unknown or not names:
        raise InvalidInput(
            f"unknown tool(s) {unknown or [spec]} in --tools; give the profiles core or all and/or tool names "
            f"(comma-separated), e.g. core,search; tools: {', '.join(_MODULE_OF)}"
        )
    chosen: dict[str, Operation] = {}
    for name in names:
        for op in select(name) if name in ("core", "all") else [find(name)]:
            if op is not None:
                chosen.setdefault(op.name, op)
    return list(chosen.values())
