"""The MCP tools through the SDK's Client, in memory and over real HTTP, in the legacy handshake and default modes."""

from __future__ import annotations

import json
from typing import Any

import anyio
import jsonschema  # type: ignore[import-untyped]  # no stubs installed; used for one validate() call
import pytest
from mcp.client import Client

from baton.errors import InvalidInput
from baton.http_app import HttpSettings, build_app
from baton.server import build_server
from baton.store import Store
from baton.tools import catalog, select
from tests.core_helpers import (  # noqa: F401 (the *_fixture names: stores start from a migrated copy)
    CORE_TOOLS,
    MODES,
    TRANSPORTS,
    Mode,
    Transport,
    connected,
    copied_store_fixture,
    dump_tables,
    error_code,
    http_client,
    http_served,
    migrated_template_fixture,
    ok,
    result_text,
)

pytestmark = [pytest.mark.parametrize("mode", MODES), pytest.mark.parametrize("transport", TRANSPORTS)]


async def test_tools_list_is_exactly_the_core_catalog_with_annotations(store: Store, mode: Mode,
                                                                       transport: Transport) -> None:
    """tools/list serves the core names exactly; reads are read-only, nothing is destructive or open-world."""
    async with connected(store, mode, transport=transport) as client:
        tools = (await client.list_tools()).tools
    assert {tool.name for tool in tools} == CORE_TOOLS and len(tools) == len(CORE_TOOLS)
    operations = catalog()
    for tool in tools:
        annotations = tool.annotations
        assert annotations is not None, tool.name
        expected_read_only = tool.name.startswith(("get-", "list-")) or tool.name in (
            "token-summary", "dashboard-snapshot", "health")
        # An omitted hint means the spec's default: readOnly false, idempotent false, destructive true.
        assert bool(annotations.read_only_hint) is expected_read_only, tool.name
        assert operations[tool.name].read_only is expected_read_only
        assert annotations.open_world_hint is False
        if not expected_read_only:
            assert annotations.destructive_hint is False, tool.name
            assert bool(annotations.idempotent_hint) is operations[tool.name].idempotent, tool.name
        assert tool.output_schema is not None and tool.output_schema["type"] == "object", tool.name
        assert tool.input_schema["type"] == "object" and tool.description, tool.name


async def test_input_schemas_publish_required_fields_and_extras_are_refused(store: Store, mode: Mode,
                                                                            transport: Transport) -> None:
    """Each inputSchema names its required parameters, the id patterns, and no auto-generated titles;
    a parameter the schema does not name is refused with `invalid` naming the allowed ones."""
    async with connected(store, mode, transport=transport) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        extra = await client.call_tool("create-session", {"requirements": "r", "sesion_id": "typo"})
        assert error_code(extra, "create-session") == "invalid"
        assert "unknown parameter 'sesion_id'" in result_text(extra) and "session_id" in result_text(extra)
        assert (await client.call_tool("list-sessions", {})).structured_content == {
            "items": [], "next_cursor": None, "truncated": False}  # nothing was created
    create = tools["create-session"].input_schema
    assert create["required"] == ["requirements"]
    assert "pattern" in create["properties"]["session_id"]
    assert set(tools["update-task-group"].input_schema["required"]) == {"session_id", "group_id"}
    assert "title" not in json.dumps(tools["log-interaction"].input_schema)


def _validated(client_tools: dict[str, Any], name: str, content: dict[str, Any]) -> dict[str, Any]:
    """Check structured content against the published outputSchema and the full output model."""
    jsonschema.validate(content, client_tools[name])
    catalog()[name].output_model.model_validate(content)
    return content


async def test_whole_orchestration_is_reflected_exactly_in_the_dashboard(store: Store, mode: Mode,
                                                                         transport: Transport) -> None:
    """create-session through update-task-group with increments: dashboard-snapshot shows every write."""
    async with connected(store, mode, transport=transport) as client:
        schemas = {t.name: t.output_schema for t in (await client.list_tools()).tools}

        async def tool(tool_name: str, /, **arguments: Any) -> dict[str, Any]:
            result = await client.call_tool(tool_name, arguments)
            content = ok(result)
            assert json.loads(result_text(result)) == content, "the text copy is the same JSON"
            return _validated(schemas, tool_name, content)

        session = await tool("create-session", requirements="Add password reset", mode="parallel", project="shop")
        sid = session["session_id"]
        assert session["created"] is True
        for group_id in ("API", "UI"):
            assert (await tool("create-task-group", session_id=sid, group_id=group_id, name=group_id))["created"]
        log_ids = [(await tool("log-interaction", session_id=sid, agent_type="developer", group_id="API",
                               content=f"step {i}"))["log_id"] for i in range(15)]
        secret = await tool("log-interaction", session_id=sid, agent_type="pm", content="password=hunter2hunter2")
        assert secret["redacted"] is True and log_ids == sorted(log_ids)
        await tool("save-reasoning", session_id=sid, agent_type="tech_lead", phase="decisions", content="use JWT",
                   confidence="high", references=["auth.py"])
        criteria = await tool("save-success-criteria", session_id=sid,
                              criteria=[{"criterion": "tests pass"}, {"criterion": "docs updated"}])
        assert len(criteria["items"]) == 2
        met = await tool("update-success-criterion", session_id=sid, criterion="tests pass", status="met",
                         evidence="CI #7")
        assert met["status"] == "met"
        await tool("log-tokens", session_id=sid, agent_type="developer", input_tokens=100, output_tokens=50,
                   cache_read_tokens=1000, cache_write_tokens=10, model="sonnet")
        await tool("log-tokens", session_id=sid, agent_type="qa_expert", input_tokens=7)
        assert (await tool("save-state", session_id=sid, state_type="orchestrator", state={"phase": 1}))["version"] == 1
        assert (await tool("save-state", session_id=sid, state_type="orchestrator", state={"phase": 2}))["version"] == 2
        await tool("save-state", session_id=sid, state_type="pm", state={"plan": ["API", "UI"]})
        await tool("update-task-group", session_id=sid, group_id="API", status="in_progress",
                   increment={"qa_attempts": 1})
        api = await tool("update-task-group", session_id=sid, group_id="API", status="approved_pending_merge",
                         expected_status="in_progress", increment={"qa_attempts": 2, "tl_review_attempts": 1})
        assert (api["qa_attempts"], api["tl_review_attempts"]) == (3, 1)

        snapshot = await tool("dashboard-snapshot", session_id=sid, log_limit=3)
        tokens = await tool("token-summary", session_id=sid, by="model")
        groups = await tool("get-task-groups", session_id=sid)
        health = await tool("health")

    assert snapshot["session"] == {k: v for k, v in session.items() if k != "created"}
    assert snapshot["orchestrator_state"] == {"phase": 2} and snapshot["pm_state"] == {"plan": ["API", "UI"]}
    assert snapshot["task_groups"]["items"] == groups["items"]
    assert snapshot["task_groups"]["by_status"] == {"approved_pending_merge": 1, "pending": 1}
    assert (snapshot["success_criteria"]["met"], snapshot["success_criteria"]["total"],
            snapshot["success_criteria"]["required_unmet"]) == (1, 2, 1)
    assert snapshot["token_summary"] == {"total": 1167, "by_agent_type": {"developer": 1160, "qa_expert": 7}}
    assert tokens["by"] == {"sonnet": 1160, "unknown": 7}
    assert [e["log_type"] for e in snapshot["recent_logs"]] == ["reasoning", "interaction", "interaction"]
    assert snapshot["recent_logs"][1]["redacted"] is True and "hunter2" not in json.dumps(snapshot)
    assert snapshot["reasoning"] == {"decisions": 1}
    assert snapshot["counts"] == {"interactions": 16, "reasoning": 1, "events": 0, "token_records": 2,
                                  "state_versions": 3, "task_groups": 2}
    assert health["counts"]["logs"] == 17 and health["db_path"] == str(store.path)


ERROR_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("create-session", {}, "invalid"),
    ("create-session", {"requirements": "r", "mode": "serial"}, "invalid"),
    ("create-session", {"requirements": "r", "session_id": "{SESSION_ID}"}, "invalid"),
    ("get-session", {"session_id": "ghost"}, "not_found"),
    ("create-session", {"session_id": "s", "requirements": "different"}, "conflict"),
    ("update-session-status", {"session_id": "ended", "status": "active"}, "invalid_transition"),
    ("update-task-group", {"session_id": "s", "group_id": "A", "increment": {"qa_attempts": -1}}, "invalid"),
    ("update-task-group", {"session_id": "s", "group_id": "A", "status": "merging",
                           "expected_status": "in_progress"}, "conflict"),
    ("update-task-group", {"session_id": "s", "group_id": "A", "status": "merging"}, "invalid_transition"),
    ("create-task-group", {"session_id": "s", "group_id": "global", "name": "x"}, "invalid"),
    ("create-task-group", {"session_id": "s", "group_id": "B", "name": "x", "complexity": "high"}, "invalid"),
    ("log-interaction", {"session_id": "s", "agent_type": "developer", "content": "y", "idempotency_key": "k"},
     "conflict"),
    ("get-logs", {"session_id": "s", "limit": 10_000}, "invalid"),
    ("get-state", {"session_id": "s", "state_type": "pm"}, "not_found"),
    ("save-state", {"session_id": "s", "state_type": "pm", "state": "[1]", "extra": 1}, "invalid"),
]


async def test_errors_start_with_the_stable_code_and_write_nothing(store: Store, mode: Mode,
                                                                   transport: Transport) -> None:
    """Every expected failure is isError with text `Error executing tool <name>: <code>: ...` and writes nothing."""
    async with connected(store, mode, transport=transport) as client:
        ok(await client.call_tool("create-session", {"session_id": "s", "requirements": "r"}))
        ok(await client.call_tool("create-task-group", {"session_id": "s", "group_id": "A", "name": "a"}))
        ok(await client.call_tool("log-interaction", {"session_id": "s", "agent_type": "developer", "content": "x",
                                                      "idempotency_key": "k"}))
        ok(await client.call_tool("create-session", {"session_id": "ended", "requirements": "r"}))
        ok(await client.call_tool("update-session-status", {"session_id": "ended", "status": "cancelled"}))
        before = dump_tables(store.path)
        for tool, arguments, code in ERROR_CASES:
            result = await client.call_tool(tool, arguments)
            assert error_code(result, tool) == code, (tool, arguments, result_text(result))
            assert len(result_text(result)) > len(f"Error executing tool {tool}: {code}: ") + 10, "it says what"
        assert dump_tables(store.path) == before, "no failed call wrote anything"


async def test_placeholder_error_says_it_is_a_placeholder(store: Store, mode: Mode, transport: Transport) -> None:
    """An unfilled template id is reported as a placeholder to substitute."""
    async with connected(store, mode, transport=transport) as client:
        result = await client.call_tool("get-session", {"session_id": "<session_id>"})
    assert error_code(result, "get-session") == "invalid" and "placeholder" in result_text(result)


async def test_many_simultaneous_tool_calls_keep_counters_and_rows_exact(store: Store, mode: Mode,
                                                                         transport: Transport) -> None:
    """200 concurrent increments and 200 concurrent log writes through one server: nothing lost or doubled."""
    async with connected(store, mode, transport=transport) as client:
        ok(await client.call_tool("create-session", {"session_id": "s", "requirements": "r"}))
        ok(await client.call_tool("create-task-group", {"session_id": "s", "group_id": "A", "name": "a"}))
        failures: list[str] = []

        async def bump() -> None:
            result = await client.call_tool("update-task-group", {"session_id": "s", "group_id": "A",
                                                                  "increment": {"qa_attempts": 1,
                                                                                "revision_count": 2}})
            if result.is_error:
                failures.append(result_text(result))

        async def log(index: int) -> None:
            result = await client.call_tool("log-interaction", {"session_id": "s", "agent_type": "developer",
                                                                "content": f"entry {index}",
                                                                "idempotency_key": f"k{index % 150}"})
            if result.is_error:
                failures.append(result_text(result))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for index in range(200):
                    tg.start_soon(bump)
                    tg.start_soon(log, index % 150)
        assert failures == []
        (group,) = ok(await client.call_tool("get-task-groups", {"session_id": "s"}))["items"]
        contents: list[str] = []
        cursor = None
        for _ in range(10):
            page = ok(await client.call_tool("get-logs", {"session_id": "s", "limit": 500, "cursor": cursor}))
            contents += [entry["content"] for entry in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert (group["qa_attempts"], group["revision_count"]) == (200, 400)
    assert len(contents) == 150 and sorted(contents) == sorted(f"entry {i}" for i in range(150))


async def test_tools_selection_by_profile_and_list(store: Store, mode: Mode, transport: Transport) -> None:
    """--tools core, all and a comma list serve exactly those tools; a tool not served cannot be called."""
    assert {op.name for op in select("core")} == CORE_TOOLS
    assert [op.name for op in select("all")] == list(catalog())
    assert {op.name for op in select("all") if op.profile != "core"} == set(catalog()) - CORE_TOOLS
    assert [op.name for op in select("health, get-session")] == ["health", "get-session"]
    async with connected(store, mode, tools="health,get-session", transport=transport) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        missing = await client.call_tool("create-session", {"requirements": "r"})
    assert names == {"health", "get-session"}
    assert missing.is_error and "create-session" in result_text(missing)
    async with connected(store, mode, tools="all", transport=transport) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == set(catalog())


@pytest.mark.parametrize("spec", ["bogus", "health,bogus", "", " , "])
def test_unknown_tool_selection_is_invalid(mode: Mode, transport: Transport, spec: str) -> None:
    """An unknown name (or nothing at all) in --tools is an invalid error that lists what is known."""
    with pytest.raises(InvalidInput, match="give the profiles core or all and/or tool names"):
        select(spec)


def test_profiles_and_tool_names_combine_in_tools_selection(mode: Mode, transport: Transport) -> None:
    """`core,search` is the core profile plus search; a name given twice (or inside a profile) is served once."""
    assert [op.name for op in select("core,search")] == [op.name for op in select("core")] + ["search"]
    assert [op.name for op in select("health,core")] == ["health"] + [
        op.name for op in select("core") if op.name != "health"]
    assert [op.name for op in select("all,core")] == list(catalog())


async def test_a_server_opens_and_migrates_its_own_store(tmp_path: Any, mode: Mode, transport: Transport) -> None:
    """Without a shared store the lifespan opens (and migrates) the database file itself."""
    db = tmp_path / "own.db"
    if transport == "memory":
        async with Client(build_server(db, select("core")), mode=mode) as client:
            created = ok(await client.call_tool("create-session", {"session_id": "s", "requirements": "r"}))
            health = ok(await client.call_tool("health", {}))
    else:  # a fresh database has no key yet: this one is served without auth (loopback)
        async with http_served(build_app(HttpSettings(db_path=str(db), auth=False))) as url, \
                http_client(url, mode) as client:
            created = ok(await client.call_tool("create-session", {"session_id": "s", "requirements": "r"}))
            health = ok(await client.call_tool("health", {}))
    assert created["created"] is True and health["db_path"] == str(db) and health["counts"]["sessions"] == 1
