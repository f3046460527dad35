"""Helpers of the proof tests (fuzz, faults, budgets, stdout): an MCP client on a background event
loop for hypothesis, argument strategies derived from each tool's published inputSchema, and the
checks every tool result must pass."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import strategies as st
from mcp.client import Client
from mcp.types import CallToolResult

from baton.operations import Operation
from baton.server import build_server, input_schema
from baton.store import Store
from baton.tools import select

# The codes an expected failure may carry on a healthy database (errors.py).
EXPECTED_CODES = ("invalid", "not_found", "conflict", "invalid_transition")
_ERROR = re.compile(r"^Error executing tool (?P<tool>[^:]+): (?P<code>[a-z_]+): (?P<message>\S.*)$", re.DOTALL)

SESSION = "fz-session"
PROJECT = "fz-project"
GROUP = "G1"

HOSTILE_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202e\u202dgnp.exe", "עברית RTL ‏mark", "👩‍💻🔥" * 50,
    "{SESSION_ID}", "<session_id>", "$GROUP_ID", "${GROUP}", "{{x}}", "%s", "null", "[]", "{}", "[1,2",
    "0", "-1", "1e309", "true", "../../etc/passwd", "'; DROP TABLE sessions; --", "\n\r\t", "x" * 70_000,
]


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def error_code(tool: str, result: CallToolResult) -> str:
    """The stable code of a tool error; fails if the text is not `Error executing tool X: code: message`."""
    text = text_of(result)
    match = _ERROR.match(text)
    assert match is not None, f"{tool}: error without a code: {text[:500]!r}"
    assert match["tool"] == tool, text[:300]
    return match["code"]


def fingerprint(db_path: Path) -> str:
    """Every row of every table, in a stable order: two equal fingerprints mean equal data."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


class DataVersion:
    """`PRAGMA data_version` on a connection of its own: it changes exactly when another connection commits."""

    def __init__(self, db_path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)

    def __call__(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        self._conn.close()


@dataclass
class SyncClient:
    """A real MCP client (in memory, connected to build_server) usable from synchronous hypothesis tests."""

    portal: BlockingPortal
    client: Client
    db_path: Path

    def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        result: CallToolResult = self.portal.call(self.client.call_tool, tool, arguments)
        return result


@contextmanager
def sync_client(db_path: Path, operations: list[Operation] | None = None) -> Iterator[SyncClient]:
    """Open the store and an in-memory MCP client on a background event loop."""
    with start_blocking_portal() as portal:
        store = portal.call(Store.open, db_path)
        try:
            server = build_server(db_path, operations or select("all"), store=store)
            with portal.wrap_async_context_manager(Client(server)) as client:
                yield SyncClient(portal, client, db_path)
        finally:
            portal.call(store.close)


# -- argument strategies ------------------------------------------------------------------------

KNOWN_VALUES: dict[str, list[Any]] = {
    "session_id": [SESSION, "fz-missing", "fz-other"],
    "group_id": [GROUP, "G2", "global", "nope"],
    "project": [PROJECT, "other-project"],
    "agent_type": ["developer", "pm", "qa_expert", "Tech Lead", "tech-lead"],
    "criterion": ["tests pass", "missing criterion"],
    "criterion_id": [1, 2, 999_999],
    "package_id": [1, 2, 999_999],
    "phase_number": [1, 2, 99],
    "cursor": ["eyJhZnRlciI6IDF9", "eyJhZnRlciI6ICJ4In0=", "not-base64!", "bnVsbA=="],
}


def hostile() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.sampled_from([2**63, -(2**63) - 1, 10**30]),
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(HOSTILE_TEXT), st.text(max_size=30),
    )
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=8), inner, max_size=4), max_leaves=8)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        resolved: dict[str, Any] = defs[node["$ref"].rsplit("/", 1)[-1]]
        return resolved
    return node


def plausible(node: dict[str, Any], defs: dict[str, Any], name: str = "") -> st.SearchStrategy[Any]:
    """Values that may well pass validation: enum members, known ids, in-range numbers, small objects."""
    node = _resolve(node, defs)
    known = KNOWN_VALUES.get(name)
    if "anyOf" in node:
        return st.one_of(*[plausible(branch, defs, name) for branch in node["anyOf"]])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    strategy: st.SearchStrategy[Any]
    if kind == "string":
        strategy = st.text(min_size=1, max_size=40) | st.sampled_from(HOSTILE_TEXT)
        if "pattern" in node:
            strategy = strategy | st.from_regex(node["pattern"], fullmatch=True).filter(
                lambda s: 0 < len(s) <= node.get("maxLength", 10**6))
    elif kind == "integer":
        low, high = node.get("minimum", -(10**6)), node.get("maximum", 10**6)
        strategy = st.integers(low - 2, high + 2) | st.sampled_from([2**63, 10**30, -(2**63) - 1])
    elif kind == "number":
        strategy = st.floats(allow_nan=False)
    elif kind == "boolean":
        strategy = st.booleans()
    elif kind == "array":
        strategy = st.lists(plausible(node.get("items", {}), defs), max_size=3)
    elif kind == "object" and "properties" in node:
        strategy = arguments_for(node, defs)
    else:
        strategy = st.dictionaries(st.text(max_size=10), st.text(max_size=20) | st.integers(), max_size=3)
    if known:
        strategy = st.sampled_from(known) | strategy
    return strategy


def arguments_for(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An argument object: required fields usually present, optional ones sometimes, now and then an
    unknown key; each value plausible or hostile."""
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for name, node in properties.items():
            present = draw(st.integers(0, 9)) < (9 if name in required else 4)
            if present:
                value = draw(plausible(node, defs, name) if draw(st.integers(0, 4)) else hostile())
                chosen[name] = value
        if draw(st.integers(0, 14)) == 0:
            chosen[draw(st.sampled_from(["extra", "sessionId", "", "\x00"]))] = draw(hostile())
        return chosen

    return build()


def tool_arguments(operation: Operation) -> st.SearchStrategy[dict[str, Any]]:
    schema = input_schema(operation)
    return arguments_for(schema, schema.get("$defs", {}))


# -- processes and mounts ------------------------------------------------------------------------


def stderr_error(stderr: str) -> dict[str, str]:
    """The `{"error": {...}}` object a failing `baton` process printed on stderr ({} if none)."""
    import json

    for line in reversed(stderr.strip().splitlines()):
        try:
            loaded = json.loads(line)
        except ValueError:
            continue
        if isinstance(loaded, dict) and isinstance(loaded.get("error"), dict):
            return {str(k): str(v) for k, v in loaded["error"].items()}
    return {}


def run_serve(db_path: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`baton serve` with stdin closed: it either fails at start-up or serves until EOF and exits 0."""
    from tests.helpers import cli_env, serve_command

    return subprocess.run(serve_command(db_path), env=cli_env(db_path), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, timeout=30, check=False)


@contextmanager
def read_only_mount(directory: Path) -> Iterator[None]:
    """`directory` bind-mounted read-only over itself (EROFS, which even root cannot write through)."""
    import pytest

    directory.mkdir(parents=True, exist_ok=True)
    if _run("mount", "--bind", str(directory), str(directory)).returncode != 0:
        pytest.skip("cannot bind-mount (needs root and mount privileges in this container)")
    try:
        done = _run("mount", "-o", "remount,ro,bind", str(directory))
        assert done.returncode == 0, done.stderr
        yield
    finally:
        _run("umount", str(directory))


@contextmanager
def small_tmpfs(directory: Path, size: str = "2m") -> Iterator[None]:
    """A tiny tmpfs at `directory`, so the disk really fills up."""
    import pytest

    directory.mkdir(parents=True, exist_ok=True)
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill a disk ({mounted.stderr.strip()}); needs root")
    try:
        yield
    finally:
        _run("umount", "-l", str(directory))


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """`chattr +i`: the file cannot be opened for writing, by root either."""
    import pytest

    done = _run("chattr", "+i", str(path))
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not supported here ({done.stderr.strip()})")
    try:
        yield
    finally:
        _run("chattr", "-i", str(path))


def fill_disk(directory: Path) -> Path:
    """Write a filler file until the filesystem under `directory` has no space left."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        block = b"\0" * 4096
        try:
            while out.write(block):
                pass
        except OSError:  # ENOSPC: the point
            pass
    return filler
