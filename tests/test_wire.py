"""An independent client: a raw newline-delimited JSON-RPC conversation with `baton serve`.

No MCP SDK on this side: the test writes the frames itself and checks what comes back on the
wire, in both protocol eras the server speaks on stdio: the handshake era (`initialize`,
protocol 2025-11-25) and the stateless 2026-07-28 era, where every request carries the
`io.modelcontextprotocol/*` envelope in `params._meta` and `server/discover` replaces the handshake.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from tests.helpers import cli_env, serve_command

MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "raw-wire-test", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
TOOL_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
# What reaches the model on every request: Claude Code sends each tool's name, description and
# inputSchema, not its outputSchema. The core profile's goal is 6,000 tokens (chars / 4) of compact JSON.
CONTEXT_BUDGET_CHARS = 24_000
# The whole tools/list, output schemas included: a guard against schemas growing without bound.
TOOLS_LIST_BUDGET_CHARS = 60_000


class Wire:
    """One stdio connection: send frames, read frames; every stdout line must be a JSON-RPC message."""

    def __init__(self, process: Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = BufferedByteReceiveStream(process.stdout)
        self._next_id = 0

    async def send(self, message: dict[str, Any]) -> None:
        await self._stdin.send((json.dumps(message) + "\n").encode())

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return the response with its id (notifications in between are skipped)."""
        self._next_id += 1
        frame: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            frame["params"] = params
        await self.send(frame)
        with anyio.fail_after(30):
            while True:
                line = await self._stdout.receive_until(b"\n", 4_000_000)
                message: dict[str, Any] = json.loads(line)
                assert message["jsonrpc"] == "2.0"
                if message.get("id") == self._next_id:
                    assert ("result" in message) != ("error" in message)
                    return message
                assert "id" not in message or "method" in message, f"a response to nothing we sent: {message}"


@asynccontextmanager
async def serve(db_path: Path) -> AsyncIterator[Wire]:
    # The server's log goes to the test's own stderr (shown on failure), never to an unread pipe.
    async with await anyio.open_process(serve_command(db_path), env=cli_env(db_path), stderr=None) as process:
        try:
            yield Wire(process)
        finally:
            assert process.stdin is not None
            await process.stdin.aclose()
            with anyio.fail_after(30):
                await process.wait()


def _check_tools(tools: list[dict[str, Any]]) -> None:
    names = [tool["name"] for tool in tools]
    assert "create-session" in names and "log-interaction" in names and len(set(names)) == len(names)
    for tool in tools:
        assert TOOL_NAME.match(tool["name"]) and tool["description"]
        assert tool["inputSchema"]["type"] == "object" and isinstance(tool["inputSchema"]["properties"], dict)
        output = tool["outputSchema"]
        assert output["type"] == "object" and output["required"] == list(output["properties"]), tool["name"]
        hints = tool["annotations"]
        assert hints["openWorldHint"] is False
        assert hints.get("readOnlyHint") is True or hints["destructiveHint"] is False


def context_chars(tools: list[dict[str, Any]]) -> int:
    """Compact JSON of tools/list as it reaches the model: without the output schemas."""
    return len(json.dumps([{k: v for k, v in tool.items() if k != "outputSchema"} for tool in tools],
                          separators=(",", ":")))


def _check_only_tools_advertised(capabilities: dict[str, Any]) -> None:
    """Nothing but tools, and no listChanged: Baton serves no prompts or resources and never changes its list."""
    assert set(capabilities) == {"tools"} and not capabilities["tools"].get("listChanged"), capabilities


def _check_call_result(result: dict[str, Any]) -> dict[str, Any]:
    """A successful tools/call: structuredContent, and the same object as JSON text."""
    assert result["isError"] is False
    (content,) = result["content"]
    assert content["type"] == "text"
    structured: dict[str, Any] = result["structuredContent"]
    assert json.loads(content["text"]) == structured
    return structured


async def test_handshake_era_wire_format(db_path: Path) -> None:
    """initialize (2025-11-25), tools/list and tools/call look as the spec says, on the wire."""
    async with serve(db_path) as wire:
        init = (await wire.request("initialize", {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"},
        }))["result"]
        assert init["protocolVersion"] == "2025-11-25"
        assert init["serverInfo"]["name"] == "baton" and init["serverInfo"]["version"]
        assert "session_id" in init["instructions"]
        _check_only_tools_advertised(init["capabilities"])
        await wire.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert (await wire.request("ping"))["result"] == {}
        assert (await wire.request("prompts/list"))["error"]["code"] == -32601

        listed = (await wire.request("tools/list"))["result"]
        _check_tools(listed["tools"])
        assert context_chars(listed["tools"]) <= CONTEXT_BUDGET_CHARS
        assert len(json.dumps(listed["tools"], separators=(",", ":"))) <= TOOLS_LIST_BUDGET_CHARS

        created = _check_call_result((await wire.request("tools/call", {
            "name": "create-session", "arguments": {"session_id": "wire-1", "requirements": "raw JSON-RPC"},
        }))["result"])
        assert created["session_id"] == "wire-1" and created["created"] is True
        logged = _check_call_result((await wire.request("tools/call", {
            "name": "log-interaction", "arguments": {"session_id": "wire-1", "agent_type": "pm", "content": "hi"},
        }))["result"])
        assert logged["session_id"] == "wire-1" and logged["content_length"] == 2

        failed = (await wire.request("tools/call", {"name": "get-session", "arguments": {"session_id": "nope"}}))
        assert failed["result"]["isError"] is True
        assert failed["result"]["content"][0]["text"].startswith("Error executing tool get-session: not_found: ")

        # A tool that is not served is a tool error with the same prefix and a code, not the SDK's "Unknown tool: x".
        unknown = (await wire.request("tools/call", {"name": "no-such-tool", "arguments": {}}))["result"]
        assert unknown["isError"] is True
        assert unknown["content"][0]["text"].startswith("Error executing tool no-such-tool: not_found: unknown tool ")
        elsewhere = (await wire.request("tools/call", {"name": "search", "arguments": {"query": "x"}}))["result"]
        assert elsewhere["isError"] is True and "--tools all" in elsewhere["content"][0]["text"]

        # A 2026-era envelope on a handshake connection is refused, not silently served.
        mixed = await wire.request("tools/list", {"_meta": ENVELOPE})
        assert mixed["error"]["code"] == -32600


async def test_stateless_era_wire_format(db_path: Path) -> None:
    """server/discover, then enveloped tools/list and tools/call, with no initialize at all."""
    async with serve(db_path) as wire:
        discovered = (await wire.request("server/discover", {"_meta": ENVELOPE}))["result"]
        assert MODERN in discovered["supportedVersions"]
        _check_only_tools_advertised(discovered["capabilities"])
        assert discovered["resultType"] == "complete"
        assert discovered["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "baton"
        # The 2026-07-28 revision dropped ping; clients and health checks still send it.
        pong = (await wire.request("ping", {"_meta": ENVELOPE}))["result"]
        assert pong["resultType"] == "complete"
        assert pong["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "baton"

        listed = (await wire.request("tools/list", {"_meta": ENVELOPE}))["result"]
        assert listed["resultType"] == "complete"
        _check_tools(listed["tools"])

        call = await wire.request("tools/call", {"_meta": ENVELOPE, "name": "create-session",
                                                 "arguments": {"session_id": "wire-2", "requirements": "2026"}})
        assert call["result"]["resultType"] == "complete"
        assert _check_call_result(call["result"])["session_id"] == "wire-2"

        unknown = (await wire.request("tools/call", {"_meta": ENVELOPE, "name": "no-such-tool", "arguments": {}}))
        assert unknown["result"]["isError"] is True and ": not_found: " in unknown["result"]["content"][0]["text"]

        bad = (await wire.request("tools/call", {"_meta": ENVELOPE, "name": "create-session",
                                                 "arguments": {"requirements": "x", "mode": "serial"}}))["result"]
        assert bad["isError"] is True and ": invalid: mode" in bad["content"][0]["text"]

        # The era is fixed by the first request: a late initialize is refused with the versions served.
        late = await wire.request("initialize", {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"},
        })
        assert late["error"]["code"] == -32022 and MODERN in late["error"]["data"]["supported"]
