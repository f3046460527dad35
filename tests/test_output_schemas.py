"""Every output field is published with its JSON type, nullable ones as `anyOf [X, null]`, nested models
and list items with their own properties, and `required` naming every field (a result always carries
all of them, null or not). Two checks: the schemas say what pydantic's own JSON schema of each output
model says, and real results of every tool validate against what tools/list publishes."""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
import pytest

from baton.operations import Operation
from baton.schemas import output_schema
from baton.store import Store
from baton.tools import catalog
from tests.core_helpers import (  # noqa: F401 (the *_fixture names: stores start from a migrated copy)
    MODES,
    Mode,
    connected,
    copied_store_fixture,
    migrated_template_fixture,
    ok,
)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _branches(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """JSON type -> the (resolved) schema of that branch, for a node that may be an `anyOf`."""
    node = _resolve(node, defs)
    if "anyOf" in node:
        return {t: b for branch in node["anyOf"] for t, b in _branches(branch, defs).items()}
    if "type" in node:
        return {node["type"]: node}
    if "enum" in node or "const" in node:  # pydantic spells a one-type Literal without `type` at times
        values = node.get("enum", [node.get("const")])
        kinds = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
        return {kinds[type(v)]: node for v in values}
    raise AssertionError(f"a schema node without a type: {node}")


def _compare(published: dict[str, Any], reference: dict[str, Any], defs: dict[str, Any], path: str) -> None:
    mine, theirs = _branches(published, {}), _branches(reference, defs)
    assert mine.keys() == theirs.keys(), f"{path}: published {sorted(mine)}, pydantic {sorted(theirs)}"
    assert "$ref" not in str(published), f"{path}: the published schema is self-contained"
    if "object" in theirs and "properties" in theirs["object"]:
        props = theirs["object"]["properties"]
        assert mine["object"]["properties"].keys() == props.keys(), path
        assert mine["object"]["required"] == list(props), f"{path}: every field is always present"
        for name, prop in props.items():
            _compare(mine["object"]["properties"][name], prop, defs, f"{path}.{name}")
    elif "object" in theirs and isinstance(theirs["object"].get("additionalProperties"), dict):
        _compare(mine["object"]["additionalProperties"], theirs["object"]["additionalProperties"], defs,
                 f"{path}{{}}")
    if "array" in theirs and "items" in theirs["array"]:
        _compare(mine["array"]["items"], theirs["array"]["items"], defs, f"{path}[]")


@pytest.mark.parametrize("name", list(catalog()))
def test_output_schema_matches_pydantic_at_every_level(name: str) -> None:
    """Each field at every depth has the JSON type(s) pydantic gives it; every object requires all its fields."""
    operation = catalog()[name]
    reference = operation.output_model.model_json_schema(mode="serialization")
    _compare(output_schema(operation), reference, reference.get("$defs", {}), name)


def _untyped_nodes(node: Any, path: str = "") -> list[str]:
    """Paths of subschemas that constrain nothing or use a `type` array: what the Inspector's --strict flags."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("type"), list) or not ({"type", "anyOf", "enum", "const"} & node.keys()):
            found.append(path or "/")
        for name, sub in node.get("properties", {}).items():
            found += _untyped_nodes(sub, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                found += _untyped_nodes(node[key], f"{path}.{key}")
        for index, branch in enumerate(node.get("anyOf", [])):
            found += _untyped_nodes(branch, f"{path}.anyOf[{index}]")
    return found


@pytest.mark.parametrize("name", list(catalog()))
def test_output_schema_types_every_node_portably(name: str) -> None:
    """No subschema is `{}` (accepts anything) or a `type` array (rejected by single-type dialects)."""
    assert _untyped_nodes(output_schema(catalog()[name])) == []


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with `additionalProperties: false` on every object that lists properties: a result field
    the schema does not publish fails validation."""
    closed = copy.deepcopy(schema)
    stack = [closed]
    while stack:
        node = stack.pop()
        if "properties" in node:
            node.setdefault("additionalProperties", False)
            stack += node["properties"].values()
        stack += [node[k] for k in ("items", "additionalProperties") if isinstance(node.get(k), dict)]
        stack += node.get("anyOf", [])
    return closed


def _nullable(operation: Operation) -> list[str]:
    schema = output_schema(operation)
    return [name for name, prop in schema["properties"].items() if {"type": "null"} in prop.get("anyOf", [])]


# Every tool of the full profile at least once; the bare session, group and calls leave optional values unset,
# so nullable fields arrive as null as well as with a value.
SCENARIO: list[tuple[str, dict[str, Any]]] = [
    ("create-session", {"session_id": "full", "requirements": "add password reset", "mode": "parallel",
                        "project": "shop", "initial_branch": "main", "metadata": {"ticket": 7}}),
    ("create-session", {"session_id": "bare", "requirements": "nothing else"}),
    ("get-session", {"session_id": "full"}),
    ("list-sessions", {}),
    ("log-interaction", {"session_id": "full", "agent_type": "developer", "content": "API done",
                         "group_id": "API", "agent_id": "developer_1", "iteration": 2}),
    ("log-interaction", {"session_id": "full", "agent_type": "pm", "content": "planning"}),
    ("log-interactions", {"session_id": "full", "entries": [{"agent_type": "qa_expert", "content": "tests green"},
                                                            {"agent_type": "tech_lead", "content": "reviewed",
                                                             "group_id": "API", "iteration": 1}]}),
    ("save-reasoning", {"session_id": "full", "agent_type": "tech_lead", "phase": "understanding",
                        "content": "use signed tokens", "confidence": "high", "references": ["auth.py"]}),
    ("save-reasoning", {"session_id": "full", "agent_type": "tech_lead", "phase": "completion", "content": "done"}),
    ("save-event", {"session_id": "full", "event_type": "deploy", "payload": {"ok": True}, "group_id": "API"}),
    ("get-logs", {"session_id": "full"}),
    ("create-task-group", {"session_id": "full", "group_id": "API", "name": "Reset API", "status": "pending",
                           "assigned_to": "developer_1", "complexity": 6, "initial_tier": "senior_software_engineer",
                           "specializations": ["auth"], "item_count": 3, "component_path": "src/auth",
                           "security_sensitive": True}),
    ("create-task-group", {"session_id": "full", "group_id": "UI", "name": "Reset form", "depends_on": ["API"]}),
    ("update-task-group", {"session_id": "full", "group_id": "API", "status": "in_progress",
                           "review_status": "approved", "merge_status": "pending", "feature_branch": "feat/reset",
                           "increment": {"qa_attempts": 1}}),
    ("get-task-groups", {"session_id": "full"}),
    ("save-success-criteria", {"session_id": "full", "criteria": [
        {"criterion": "tests pass"}, {"criterion": "docs", "required_for_completion": False}]}),
    ("update-success-criterion", {"session_id": "full", "criterion": "tests pass", "status": "met",
                                  "actual": "312 passed", "evidence": "CI #7"}),
    ("get-success-criteria", {"session_id": "full"}),
    ("save-state", {"session_id": "full", "state_type": "pm", "state": {"plan": ["API", "UI"]}}),
    ("save-state", {"session_id": "full", "state_type": "orchestrator", "state": {"phase": 2}}),
    ("get-state", {"session_id": "full", "state_type": "pm"}),
    ("log-tokens", {"session_id": "full", "agent_type": "developer", "input_tokens": 100, "output_tokens": 50,
                    "cache_read_tokens": 1000, "cache_write_tokens": 10, "model": "sonnet", "agent_id": "developer_1",
                    "group_id": "API"}),
    ("log-tokens", {"session_id": "full", "agent_type": "qa_expert", "input_tokens": 7}),
    ("token-summary", {"session_id": "full"}),
    ("token-summary", {"session_id": "full", "by": "model"}),
    ("dashboard-snapshot", {"session_id": "full"}),
    ("dashboard-snapshot", {"session_id": "bare"}),
    ("health", {}),
    ("save-context-package", {"session_id": "full", "package_type": "research", "producer": "developer",
                              "consumers": ["qa_expert"], "summary": "token format", "content": "JWT, 30 min",
                              "group_id": "API", "priority": "high"}),
    ("get-context-packages", {"session_id": "full", "agent_type": "qa_expert"}),
    ("mark-context-consumed", {"session_id": "full", "package_id": 1, "agent_type": "qa_expert", "iteration": 1}),
    ("save-consumption", {"session_id": "full", "package_id": 1, "agent_type": "qa_expert", "iteration": 1,
                          "tokens": 120}),
    ("save-skill-output", {"session_id": "full", "skill_name": "lint-check", "output": {"errors": 0},
                           "agent_type": "developer", "group_id": "API"}),
    ("get-skill-output", {"session_id": "full", "skill_name": "lint-check"}),
    ("save-error-pattern", {"session_id": "full", "error_message": "ImportError: no module named jwt",
                            "solution": "add pyjwt", "error_type": "ImportError", "agent_type": "developer"}),
    ("save-error-pattern", {"project": "shop", "error_message": "timeout talking to db"}),
    ("get-error-patterns", {"project": "shop"}),
    ("update-error-confidence", {"project": "shop", "error_message": "ImportError: no module named jwt",
                                 "outcome": "success"}),
    ("prune-error-patterns", {}),
    ("save-strategy", {"session_id": "full", "topic": "tokens", "insight": "sign them", "agent_type": "tech_lead"}),
    ("save-strategy", {"project": "shop", "topic": "reviews", "insight": "small diffs"}),
    ("get-strategies", {"project": "shop"}),
    ("check-mandatory-phases", {"session_id": "full", "agent_type": "tech_lead"}),
    ("save-development-plan", {"session_id": "full", "plan_text": "1. API 2. UI", "original_prompt": "reset",
                               "phases": [{"name": "API"}, {"name": "UI", "description": "the form"}],
                               "metadata": {"source": "pm"}}),
    ("get-development-plan", {"session_id": "full"}),
    ("update-plan-phase", {"session_id": "full", "phase_number": 1, "status": "in_progress", "notes": "started",
                           "updated_by": "pm"}),
    ("route", {"session_id": "full", "agent_type": "developer", "response_status": "READY_FOR_QA", "group_id": "API"}),
    ("search", {"query": "tests"}),
    ("project-summary", {"project": "shop"}),
    ("update-session-status", {"session_id": "bare", "status": "cancelled", "reason": "nothing to do"}),
]


@pytest.mark.parametrize("mode", MODES)
async def test_every_tool_result_validates_against_its_published_schema(store: Store, mode: Mode) -> None:
    """Real results of every tool, null values included, validate against the outputSchema from tools/list,
    with no field the schema leaves out."""
    seen: dict[tuple[str, str], set[bool]] = defaultdict(set)
    async with connected(store, mode, tools="all") as client:
        schemas = {tool.name: tool.output_schema for tool in (await client.list_tools()).tools}
        for tool, arguments in SCENARIO:
            content = ok(await client.call_tool(tool, arguments))
            schema = schemas[tool]
            assert schema is not None, tool
            jsonschema.Draft202012Validator(_closed(schema)).validate(content)
            for field in _nullable(catalog()[tool]):
                seen[(tool, field)].add(content[field] is None)
    assert {tool for tool, _ in SCENARIO} == set(catalog()) == schemas.keys()
    for wanted in (("create-task-group", "complexity"), ("create-session", "project"),
                   ("dashboard-snapshot", "pm_state"), ("create-task-group", "assigned_to")):
        assert seen[wanted] == {True, False}, f"{wanted} was validated both null and with a value"
