"""Who is calling: the identity behind each tool call, its scopes, and the audit row of its writes.

The MCP layer (server.py) and the CLI (cli.py) enter `calling(...)` around each operation; the
store's write transaction asks `audited(conn)` to add one `audit_log` row, in the same
transaction, when the call changed something. So a write is never acknowledged without its
audit row, and a write that fails or is rolled back leaves none. Outside a call (migrations,
imports, maintenance) nothing is recorded. This module never imports the MCP SDK.
"""

from __future__ import annotations

import contextvars
import functools
import getpass
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel

from baton.clock import utc_now
from baton.errors import Forbidden

if TYPE_CHECKING:
    import aiosqlite

    from baton.operations import Operation

Via = Literal["stdio", "http", "cli"]
# Tool inputs that name the acting agent: a key's agent id fills them when the caller leaves them out.
AGENT_FIELDS = ("agent_id", "from_agent")


@dataclass(frozen=True)
class Caller:
    agent_id: str
    via: Via
    key_id: str | None = None  # None: not authenticated by an API key (stdio, CLI, HTTP --no-auth)
    scopes: frozenset[str] = frozenset({"read", "write"})

    def authorize(self, operation: Operation) -> None:
        """Refuse an operation beyond the key's scope: `read` keys may call read-only operations only."""
        if not operation.read_only and "write" not in self.scopes:
            raise Forbidden(
                f"{operation.name} writes, and key {self.key_id} of agent {self.agent_id!r} has only the "
                f"{', '.join(sorted(self.scopes))} scope; use a key created with --scopes read,write"
            )

    def with_default_agent(self, operation: Operation, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """`arguments` with the key's agent id as the acting agent where the tool takes one and it was omitted.

        Only for writes: on a read-only tool an agent id is a filter, and narrowing a query to the
        caller's own rows unasked would silently change its answer.
        """
        filled = dict(arguments)
        if self.key_id is None or operation.read_only:
            return filled
        for name, field in operation.input_model.model_fields.items():
            if name in AGENT_FIELDS and filled.get(name) is None:
                filled[name] = self.agent_id
            item_model = _list_item_model(field.annotation)  # e.g. log-interactions' entries
            if item_model is not None and isinstance(filled.get(name), list):
                names = [n for n in AGENT_FIELDS if n in item_model.model_fields]
                filled[name] = [{**item, **{n: self.agent_id for n in names if item.get(n) is None}}
                                if isinstance(item, dict) else item for item in filled[name]]
        return filled


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a list-of-models field (a batch of entries), else None."""
    if get_origin(annotation) is not list:
        return None
    (item,) = get_args(annotation)
    return item if isinstance(item, type) and issubclass(item, BaseModel) else None


@functools.cache
def local_caller(via: Via) -> Caller:
    """The user of this machine: over stdio and the CLI whoever can run the process can do anything."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        user = "unknown"
    return Caller(agent_id=f"local:{user}", via=via)


@dataclass(frozen=True)
class Call:
    caller: Caller
    tool: str
    session_id: str | None


_current: contextvars.ContextVar[Call | None] = contextvars.ContextVar("baton_call", default=None)


@contextmanager
def calling(caller: Caller, tool: str, arguments: Mapping[str, Any]) -> Iterator[None]:
    """Attribute the writes made inside the block to `caller` calling `tool`."""
    session_id = arguments.get("session_id")
    token = _current.set(Call(caller, tool, session_id if isinstance(session_id, str) else None))
    try:
        yield
    finally:
        _current.reset(token)


@asynccontextmanager
async def audited(conn: aiosqlite.Connection) -> AsyncIterator[None]:
    """Around the body of one write transaction: on normal exit, record who made its changes.

    A transaction that changed nothing (an idempotent replay, a no-op update) is not recorded.
    """
    call = _current.get()
    before = conn.total_changes
    yield
    if call is None or conn.total_changes == before:
        return
    await conn.execute(
        "INSERT INTO audit_log (at, agent_id, key_id, via, tool, session_id) VALUES (?, ?, ?, ?, ?, ?)",
        (utc_now(), call.caller.agent_id, call.caller.key_id, call.caller.via, call.tool, call.session_id),
    )
