"""Bad input at every tool, through a real MCP client: a success or a coded error, never a crash,
never a partial write, and the server keeps serving."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from baton.operations import encode_cursor
from baton.tools import select
from tests.helpers import cli_json, run_cli
from tests.proof_helpers import (
    EXPECTED_CODES,
    GROUP,
    HOSTILE_TEXT,
    PROJECT,
    SESSION,
    DataVersion,
    SyncClient,
    error_code,
    fingerprint,
    sync_client,
    text_of,
    tool_arguments,
)

OPERATIONS = {op.name: op for op in select("all")}
FUZZ = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


class Harness:
    def __init__(self, client: SyncClient) -> None:
        self.client = client
        self.version = DataVersion(client.db_path)

    def check(self, tool: str, arguments: dict[str, Any]) -> str | None:
        """Call `tool`; return the error code (None on success) after checking the contract."""
        before = self.version()
        result = self.client.call(tool, arguments)
        if result.is_error:
            code = error_code(tool, result)
            assert code in EXPECTED_CODES, f"{tool}({arguments!r:.300}) -> {text_of(result)[:500]}"
            assert self.version() == before, f"{tool} failed with {code} but committed a change"
            return code
        assert isinstance(result.structured_content, dict), f"{tool}: success without a result object"
        return None

    def still_serves(self) -> None:
        health = self.client.call("health", {})
        assert not health.is_error, text_of(health)
        got = self.client.call("get-session", {"session_id": SESSION})
        assert not got.is_error, text_of(got)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    db_path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    with sync_client(db_path) as client:
        seeds: list[tuple[str, dict[str, Any]]] = [
            ("create-session", {"session_id": SESSION, "requirements": "fuzz target", "project": PROJECT}),
            ("create-task-group", {"session_id": SESSION, "group_id": GROUP, "name": "fuzzed group"}),
            ("save-success-criteria", {"session_id": SESSION, "criteria": [{"criterion": "tests pass"}]}),
            ("log-interaction", {"session_id": SESSION, "agent_type": "developer", "content": "hello"}),
        ]
        for tool, arguments in seeds:
            result = client.call(tool, arguments)
            assert not result.is_error, text_of(result)
        harness = Harness(client)
        yield harness
        harness.version.close()


@pytest.mark.parametrize("tool", sorted(OPERATIONS))
@FUZZ
@given(data=st.data())
def test_every_tool_answers_bad_input_with_a_coded_error_and_writes_nothing(
    harness: Harness, tool: str, data: st.DataObject
) -> None:
    """Malformed, mistyped, oversized, unicode-hostile and placeholder arguments: success or a stable code."""
    arguments = data.draw(tool_arguments(OPERATIONS[tool]), label="arguments")
    harness.check(tool, arguments)
    harness.still_serves()


@st.composite
def call_sequences(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    names = draw(st.lists(st.sampled_from(sorted(OPERATIONS)), min_size=2, max_size=6))
    return [(name, draw(tool_arguments(OPERATIONS[name]))) for name in names]


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(sequence=call_sequences())
def test_calls_in_any_order_keep_the_contract(harness: Harness, sequence: list[tuple[str, dict[str, Any]]]) -> None:
    """Out-of-order calls (update before create, reads of what was never written) never crash the server."""
    for tool, arguments in sequence:
        harness.check(tool, arguments)
    harness.still_serves()


# Lone surrogates cannot cross a UTF-8 JSON transport at all: the client refuses to send them.
SENDABLE_TEXT = [v for v in HOSTILE_TEXT if not any(0xD800 <= ord(c) <= 0xDFFF for c in v)]

def nested(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return root


def nested_list(levels: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(levels):
        node.append([])
        node = node[0]
    return root


REJECTED: list[tuple[str, dict[str, Any], str]] = [
    # Stored, these could never be read back (pydantic's serialiser stops at its depth limit).
    ("save-state", {"session_id": SESSION, "state_type": "pm", "state": nested(80)}, "invalid"),
    ("save-state", {"session_id": SESSION, "state_type": "pm", "state": '{"a":' * 1500 + "{}" + "}" * 1500}, "invalid"),
    ("save-event", {"session_id": SESSION, "event_type": "e", "payload": {"l": nested_list(70)}}, "invalid"),
    ("log-interaction", {"session_id": SESSION, "agent_type": "developer", "content": "x\ud800y"}, "invalid"),
    ("log-interaction", {"session_id": "{SESSION_ID}", "agent_type": "developer", "content": "x"}, "invalid"),
    ("log-interaction", {"session_id": "fz-missing", "agent_type": "developer", "content": "x"}, "not_found"),
    ("save-reasoning", {"session_id": SESSION, "agent_type": "pm", "phase": "dreaming", "content": "x"}, "invalid"),
    ("update-task-group", {"session_id": SESSION, "group_id": GROUP, "status": "merging"}, "invalid_transition"),
    ("update-task-group", {"session_id": SESSION, "group_id": GROUP, "increment": {"qa_attempts": 1},
                           "expected_status": "completed"}, "conflict"),
    ("update-task-group", {"session_id": SESSION, "group_id": "nope", "increment": {"qa_attempts": 1}}, "not_found"),
    ("save-success-criteria", {"session_id": SESSION, "criteria": [{"criterion": "ok one"}, {"criterion": ""}]},
     "invalid"),
    ("create-session", {"session_id": SESSION, "requirements": "a different payload"}, "conflict"),
    ("log-tokens", {"session_id": SESSION, "agent_type": "developer", "input_tokens": -1}, "invalid"),
    ("save-state", {"session_id": SESSION, "state_type": "pm", "state": {"big": "x" * 100_000}}, "invalid"),
]


@pytest.mark.parametrize(("tool", "arguments", "code"), REJECTED, ids=[f"{t}-{c}" for t, _, c in REJECTED])
def test_a_rejected_call_leaves_the_database_dump_unchanged(
    harness: Harness, tool: str, arguments: dict[str, Any], code: str
) -> None:
    """The whole dump (every row of every table) is identical before and after a rejected call."""
    before = fingerprint(harness.client.db_path)
    assert harness.check(tool, arguments) == code
    assert fingerprint(harness.client.db_path) == before


async def test_a_real_server_process_survives_hostile_input(tmp_path: Path) -> None:
    """Over real stdio (JSON-RPC framing): hostile values at every tool, then the same process still serves."""
    params = StdioServerParameters(command=sys.executable, args=[
        "-m", "baton", "serve", "--db", str(tmp_path / "smoke.db"), "--tools", "all", "--log-level", "ERROR"])
    async with Client(params) as client:
        created = await client.call_tool("create-session", {"session_id": SESSION, "requirements": "smoke"})
        assert not created.is_error, text_of(created)
        pid = (await client.call_tool("health", {})).structured_content
        for tool, op in OPERATIONS.items():
            for index, value in enumerate(SENDABLE_TEXT):
                arguments = {name: value for name in op.input_model.model_fields}
                arguments["session_id"] = SESSION if index % 2 else value
                result = await client.call_tool(tool, arguments)
                if result.is_error:
                    assert error_code(tool, result) in EXPECTED_CODES, text_of(result)[:500]
        after = (await client.call_tool("health", {})).structured_content
        assert pid is not None and after is not None and after["pid"] == pid["pid"]


def test_cli_rejects_undecodable_bytes_in_arguments(db_path: Path) -> None:
    """A non-UTF-8 byte in argv (a lone surrogate once decoded) is `invalid` with exit 2, not a traceback."""
    cli_json(db_path, "create-session", "--session-id", SESSION, "--requirements", "cli bytes")
    proc = run_cli(db_path, "log-interaction", "--session-id", SESSION, "--agent-type", "developer",
                   "--content", "bad \udcff byte")
    assert proc.returncode == 2, proc.stderr
    assert json.loads(proc.stderr)["error"]["code"] == "invalid"
    assert "surrogate" in proc.stderr


INTEGER_FIELDS = [(op.name, name) for op in OPERATIONS.values() for name, field in op.input_model.model_fields.items()
                  if "int" in str(field.annotation) and name != "cursor"]


@pytest.mark.parametrize(("tool", "field"), INTEGER_FIELDS, ids=[f"{t}.{f}" for t, f in INTEGER_FIELDS])
def test_integers_beyond_64_bits_are_invalid_not_internal(harness: Harness, tool: str, field: str) -> None:
    """10**30 or 2**63 in any integer parameter is `invalid` (SQLite cannot bind it), never `internal`."""
    for huge in (2**63, 10**30, -(2**63) - 1):
        result = harness.client.call(tool, {"session_id": SESSION, field: huge})
        assert result.is_error and error_code(tool, result) in EXPECTED_CODES, text_of(result)[:300]


PAGED = sorted(name for name, op in OPERATIONS.items() if "cursor" in op.input_model.model_fields)


@pytest.mark.parametrize("tool", PAGED)
def test_a_cursor_with_a_huge_position_is_invalid(harness: Harness, tool: str) -> None:
    """A forged cursor whose position does not fit 64 bits is `invalid`, like any cursor this server never issued."""
    for key in ("after", "before", "offset", "after_seq"):
        forged = encode_cursor({key: 10**30})
        result = harness.client.call(tool, {"session_id": SESSION, "project": PROJECT, "query": "x",
                                            "agent_type": "developer", "cursor": forged})
        if result.is_error:
            assert error_code(tool, result) in EXPECTED_CODES, text_of(result)[:300]


def test_cli_rejects_nan_and_infinity_which_json_cannot_carry(db_path: Path) -> None:
    """Python's JSON parser accepts NaN in --json; stored, it would come back as something else: invalid."""
    for number in ("NaN", "Infinity", "-Infinity"):
        proc = run_cli(db_path, "create-session", "--json",
                       f'{{"session_id": "nan-1", "requirements": "r", "metadata": {{"x": {number}}}}}')
        assert proc.returncode == 2, proc.stderr
        assert json.loads(proc.stderr)["error"]["code"] == "invalid"


def test_unserialisable_stored_data_is_a_coded_error_not_the_sdk_opaque_one(tmp_path: Path) -> None:
    """State nested too deep to serialise (written before such input was refused, or by another tool):
    reading it answers `internal: ...` with the reason, never the SDK's bare "Error executing tool"."""
    db_path = tmp_path / "deep.db"
    cli_json(db_path, "create-session", "--session-id", SESSION, "--requirements", "deep")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("INSERT INTO state_snapshots (session_id, state_type, group_id, version, state, saved_at)"
                     " VALUES (?, 'pm', 'global', 1, ?, '2026-01-01T00:00:00.000Z')",
                     (SESSION, '{"a":' * 1500 + "{}" + "}" * 1500))
    conn.close()
    with sync_client(db_path) as client:
        result = client.call("get-state", {"session_id": SESSION, "state_type": "pm"})
        assert result.is_error
        assert text_of(result).startswith("Error executing tool get-state: internal: "), text_of(result)[:300]
        assert not client.call("health", {}).is_error
