"""docs/http.md stays true: its JSON blocks parse, its Copilot allowlist is the core profile, and every
header form it shows (client configs, `--header`, curl) is accepted by a real HTTP server as written,
with only the key placeholder replaced by a key."""

from __future__ import annotations

import itertools
import json
import re
import shlex
from typing import Any

import httpx2

from baton import keys
from baton.store import Store
from baton.tools import catalog
from tests.core_helpers import copied_store_fixture, migrated_template_fixture  # noqa: F401 (fixtures)
from tests.helpers import ROOT
from tests.test_http import MCP_HEADERS, served

DOC = ROOT / "docs" / "http.md"
# Each client's way of naming the key in a config: Claude Code and the shell, VS Code, Copilot.
PLACEHOLDERS = ("${BATON_KEY}", "$BATON_KEY", "${input:baton-key}", "$COPILOT_MCP_BATON_KEY")
PUBLIC_URL = "https://baton.example.com"
HEALTH = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "health", "arguments": {}}}


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(encoding="utf-8"), flags=re.M | re.S)


def with_key(text: str, key: str) -> str:
    for placeholder in PLACEHOLDERS:
        text = text.replace(placeholder, key)
    assert "$" not in text, f"a key placeholder the test does not know: {text!r}"
    return text


def server_entries() -> list[dict[str, Any]]:
    """The `baton` entry of every client config block (mcpServers or VS Code's servers)."""
    entries = []
    for block in blocks("json"):
        config = json.loads(block)
        entries.append((config.get("mcpServers") or config["servers"])["baton"])
    return entries


def shell_headers() -> list[str]:
    """Every `--header` / `-H` value in the shell blocks (continuation lines joined)."""
    found = []
    for block in blocks("sh"):
        for command in block.replace("\\\n", " ").splitlines():
            words = shlex.split(command, comments=True)
            found += [value for flag, value in itertools.pairwise(words) if flag in ("--header", "-H")]
    return found


def test_every_json_block_parses_and_configures_http_with_a_bearer_header() -> None:
    """The Claude Code, VS Code and Copilot blocks are valid JSON, each an http server with a URL on /mcp."""
    entries = server_entries()
    assert len(entries) == len(blocks("json")) == 3
    for entry in entries:
        assert entry["type"] == "http" and entry["url"] == f"{PUBLIC_URL}/mcp"
        assert entry["headers"]["Authorization"].startswith("Bearer ")


def test_the_copilot_allowlist_is_the_core_profile() -> None:
    """Copilot requires `tools`; the block lists the core tools in catalog order, so it cannot drift."""
    (copilot,) = [entry for entry in server_entries() if "tools" in entry]
    assert copilot["tools"] == [op.name for op in catalog().values() if op.profile == "core"]


async def test_every_header_form_shown_is_accepted_by_a_real_server(store: Store) -> None:
    """Each documented header, key substituted, gets a 200 tool result; without the key the same request is 401."""
    key = str((await keys.create(store, "docs-reader", "read"))["key"])
    config_headers = [entry["headers"] for entry in server_entries()]
    flag_headers = [dict([header.split(": ", 1)]) for header in shell_headers() if header.lower().startswith("auth")]
    assert len(config_headers) == 3 and len(flag_headers) >= 4  # claude mcp add, curl x2, inspector x2
    async with served(store) as url, httpx2.AsyncClient() as http:
        for headers in [*config_headers, *flag_headers]:
            sent = {name: with_key(value, key) for name, value in headers.items()}
            response = await http.post(f"{url}/mcp", json=HEALTH, headers={**MCP_HEADERS, **sent})
            assert response.status_code == 200, (headers, response.text)
            assert response.json()["result"]["isError"] is False
        refused = await http.post(f"{url}/mcp", json=HEALTH, headers=MCP_HEADERS)
        assert refused.status_code == 401


async def test_the_curl_commands_work_as_written(store: Store) -> None:
    """Each curl block, run against a real server: its headers and body give a tool result; the documented
    read-key write is `forbidden` and writes nothing."""
    key = str((await keys.create(store, "docs-reader", "read"))["key"])
    commands = [block.replace("\\\n", " ") for block in blocks("sh") if block.startswith("curl")]
    assert len(commands) == 2
    async with served(store) as url, httpx2.AsyncClient() as http:
        for command in commands:
            words = shlex.split(with_key(command, key))
            target = next(word for word in words if word.startswith(("http://", "https://")))
            path = target.split("/", 3)[3]
            headers = dict(value.split(": ", 1) for flag, value in itertools.pairwise(words)
                           if flag == "-H")
            body = words[words.index("-d") + 1]
            response = await http.post(f"{url}/{path}", content=body, headers=headers)
            assert path == "mcp" and response.status_code == 200, response.text
            result = response.json()["result"]
            if json.loads(body)["params"]["name"] == "create-session":
                assert result["isError"] is True
                assert "forbidden: create-session writes" in result["content"][0]["text"]
            else:
                assert result["isError"] is False
    async with store.read() as conn:
        assert list(await conn.execute_fetchall("SELECT session_id FROM sessions")) == []
