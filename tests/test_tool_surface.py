"""What a client learns besides tool results: parameter descriptions, capabilities, ping, and the
answer for a tool that is not served. Through the SDK's in-memory client, in both protocol eras."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.types import METHOD_NOT_FOUND

from baton.store import Store
from tests.core_helpers import (  # noqa: F401 (the *_fixture names: stores start from a migrated copy)
    MODES,
    Mode,
    connected,
    copied_store_fixture,
    error_code,
    migrated_template_fixture,
    result_text,
)

pytestmark = pytest.mark.parametrize("mode", MODES)

# `_return_to_blocked`, `_x`: a leading underscore names a Python internal, which means nothing to an agent.
PRIVATE_NAME = re.compile(r"(?<![A-Za-z0-9_])_[A-Za-z]\w*")


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named property anywhere in a schema (nested objects and `$defs` included), with its path."""
    if isinstance(node, list):
        for item in node:
            yield from _properties(item, path)
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "properties":
            for name, prop in value.items():
                yield f"{path}{name}", prop
                yield from _properties(prop, f"{path}{name}.")
        elif key == "$defs":
            for name, definition in value.items():
                yield from _properties(definition, f"$defs.{name}.")
        elif isinstance(value, dict | list):
            yield from _properties(value, path)


def _described(prop: dict[str, Any]) -> bool:
    """A description on the property itself, or on its one non-null branch (`anyOf: [X, null]` in `$defs`)."""
    if str(prop.get("description", "")).strip():
        return True
    branches = [b for b in prop.get("anyOf", []) if b != {"type": "null"}]
    return len(branches) == 1 and bool(str(branches[0].get("description", "")).strip())


async def test_every_parameter_of_every_tool_is_described(store: Store, mode: Mode) -> None:
    """An agent can use each tool from its schema alone: every input property, nested ones included, says what it is."""
    async with connected(store, mode, tools="all") as client:
        tools = (await client.list_tools()).tools
    missing = [f"{tool.name}: {path}" for tool in tools for path, prop in _properties(tool.input_schema)
               if not _described(prop)]
    assert missing == []


async def test_no_description_names_a_private_name(store: Store, mode: Mode) -> None:
    """Tool descriptions and schemas (input and output) never mention an internal such as `_return_to_blocked`."""
    async with connected(store, mode, tools="all") as client:
        tools = (await client.list_tools()).tools
    found = {tool.name: PRIVATE_NAME.findall(json.dumps([tool.description, tool.input_schema, tool.output_schema]))
             for tool in tools}
    assert {name: names for name, names in found.items() if names} == {}


async def test_only_tools_are_advertised(store: Store, mode: Mode) -> None:
    """Capabilities name tools only, with no listChanged promise; prompts and resources are not served at all."""
    async with connected(store, mode) as client:
        capabilities = client.server_capabilities.model_dump(by_alias=True, exclude_none=True)
        assert set(capabilities) == {"tools"} and not capabilities["tools"].get("listChanged")
        for unserved in (client.list_prompts(), client.list_resources()):
            with pytest.raises(MCPError) as refused:
                await unserved
            assert refused.value.error.code == METHOD_NOT_FOUND


async def test_ping_is_answered(store: Store, mode: Mode) -> None:
    """ping answers with an empty result in the handshake era and in the stateless era, whose spec dropped it
    but whose clients and health checks still send it."""
    async with connected(store, mode) as client:
        with pytest.warns(MCPDeprecationWarning, match="ping"):  # the SDK's client flags ping in every mode
            result = await client.send_ping()
        assert result.model_dump(exclude_none=True, exclude={"result_type", "meta"}) == {}
        assert (await client.list_tools()).tools, "the connection still serves after the ping"


async def test_unknown_tool_is_not_found(store: Store, mode: Mode) -> None:
    """A tool nobody has is `not_found` naming it; one of another profile also says how to start the server with it."""
    async with connected(store, mode) as client:
        unknown = await client.call_tool("no-such-tool", {})
        elsewhere = await client.call_tool("get-context-packages", {"session_id": "s", "agent_type": "developer"})
    assert error_code(unknown, "no-such-tool") == "not_found"
    assert "unknown tool 'no-such-tool'" in result_text(unknown) and "--tools" not in result_text(unknown)
    assert error_code(elsewhere, "get-context-packages") == "not_found"
    assert "'get-context-packages'" in result_text(elsewhere) and "--tools all" in result_text(elsewhere)
