"""MCP wiring: one tool per operation in the table, served over stdio.

The only module that imports the MCP SDK. Each tool receives the raw arguments, which the
operation validates with its own input model, so every bad input, including a wrong type or a
missing field, becomes `invalid: ...` rather than the SDK's own wording. The published
inputSchema is the input model's JSON schema; the outputSchema is the output model's.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.server.runner import serve_dual_era_loop
from mcp.types import CallToolResult, Implementation, InputRequiredResult, TextContent, ToolAnnotations
from mcp_types import SERVER_INFO_META_KEY
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ConfigDict

from baton import __version__
from baton.caller import Caller, calling, local_caller
from baton.errors import BatonError
from baton.operations import Operation
from baton.schemas import input_schema as input_schema  # re-exported: tests build arguments from it
from baton.schemas import output_schema
from baton.stdio import stdio_server, stop_on_signals
from baton.store import Store
from baton.tools import OPERATIONS_BY_MODULE

log = logging.getLogger("baton.server")

INSTRUCTIONS = (
    "Baton keeps the shared state of a team of coding agents: sessions, task groups, logs, "
    "reasoning, success criteria, saved state, token usage (and, with --tools all, context packages, "
    "skill outputs, error patterns, strategies, plans, routing and search). Create a session first; pass its "
    "session_id to every other tool. Errors start with a stable code (invalid, not_found, conflict, "
    "invalid_transition, busy). Writes accept idempotency_key so a retry never writes twice."
)


@dataclass
class AppState:
    store: Store


class RawArguments(ArgModelBase):
    """Hands the tool the arguments untouched; the operation's own model validates them."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


def _annotations(operation: Operation) -> ToolAnnotations:
    # destructiveHint and idempotentHint only mean something for tools that write. Only hints that
    # differ from the spec's defaults (readOnly false, destructive true, idempotent false, openWorld
    # true) are sent: a default costs context on every request and says nothing. Only explicit
    # maintenance operations (e.g. prune-error-patterns) destroy anything.
    if operation.read_only:
        return ToolAnnotations(read_only_hint=True, open_world_hint=False)
    return ToolAnnotations(
        destructive_hint=None if operation.destructive else False,
        idempotent_hint=True if operation.idempotent else None,
        open_world_hint=False,
    )


def _caller(ctx: Context[AppState]) -> Caller:
    """Who makes this call: a key's agent over HTTP, the local user over stdio."""
    token = get_access_token()
    if token is not None:  # http_app's verifier puts the key's public id in `token`, never the key
        return Caller(agent_id=token.client_id, via="http", key_id=token.token, scopes=frozenset(token.scopes))
    if ctx.request_context.request is not None:  # HTTP with --no-auth (loopback only)
        return Caller(agent_id="anonymous", via="http")
    return local_caller("stdio")


def _tool_for(operation: Operation) -> Tool:
    async def call(arguments: dict[str, Any], ctx: Context[AppState]) -> CallToolResult:
        store = ctx.request_context.lifespan_context.store
        try:
            caller = _caller(ctx)
            caller.authorize(operation)  # before validation: a read key learns nothing about a write's inputs
            arguments = caller.with_default_agent(operation, arguments)
            with calling(caller, operation.name, arguments):
                result = await operation.run(store, arguments)
            # The text copy (for clients that ignore structured content) is compact JSON, not indented,
            # so the whole response stays within the budget. Serialising is inside the try: stored data
            # that cannot be serialised must not escape as the SDK's opaque "Error executing tool".
            return CallToolResult(
                content=[TextContent(type="text", text=result.model_dump_json())],
                structured_content=result.model_dump(mode="json"),
            )
        except BatonError as exc:
            raise ToolError(str(exc)) from None
        except Exception as exc:
            # A bug, not bad input: keep the traceback in the log and tell the client something useful.
            log.exception("tool %s failed", operation.name)
            raise ToolError(f"internal: {type(exc).__name__}: {exc} (a Baton bug; the log has details)") from exc

    return Tool(
        fn=call,
        name=operation.name,
        title=operation.title,
        description=operation.description,
        parameters=input_schema(operation),
        fn_metadata=FuncMetadata(
            arg_model=RawArguments, output_model=operation.output_model, output_schema=output_schema(operation)
        ),
        is_async=True,
        context_kwarg="ctx",
        annotations=_annotations(operation),
    )


# Handlers MCPServer registers whatever it serves. Capabilities are derived from the registered
# handlers, so while these stay the server advertises prompts and resources it has nothing behind.
_UNSERVED_METHODS = ("prompts/list", "prompts/get", "resources/list", "resources/templates/list", "resources/read")


def unknown_tool(name: str) -> str:
    """The error for a tool this server does not serve, with the SDK's prefix that every Baton tool
    error has; for a tool of another profile, how to start the server with it."""
    shown = name if len(name) <= 100 else f"{name[:100]}..."  # the name is the caller's: any length
    if any(name in names for names in OPERATIONS_BY_MODULE.values()):
        problem = (f"not_found: unknown tool {shown!r} in this server's profile; start the server with "
                   f"`--tools all` (or add just this tool: `--tools core,{shown}`)")
    else:
        problem = f"not_found: unknown tool {shown!r}; tools/list names the tools served"
    return f"Error executing tool {shown}: {problem}"


class BatonServer(MCPServer[AppState]):
    """MCPServer advertising only what Baton implements: tools, without `listChanged` (the list never
    changes while the server runs), so no prompts, resources or subscriptions. A tool it does not
    serve is a coded tool error, and ping is answered in both protocol eras."""

    def __init__(self, operations: Sequence[Operation], **settings: Any) -> None:
        # subscriptions=False: nothing is ever published, so `subscriptions/listen` is not served and
        # the 2026 era's capabilities (derived from it) promise no listChanged and no resource subscribe.
        super().__init__("baton", tools=[_tool_for(op) for op in operations], subscriptions=False, **settings)
        self._served = frozenset(op.name for op in operations)
        handlers = self._lowlevel_server._request_handlers  # the SDK has no public way to unregister one
        for method in _UNSERVED_METHODS:
            handlers.pop(method, None)
        self.middleware.append(self._answer_ping)

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[AppState, Any] | None = None) -> CallToolResult | InputRequiredResult:
        if name not in self._served:
            # The SDK's own answer is "Unknown tool: x", without a code. Baton's errors all read
            # "Error executing tool <name>: <code>: ...", so clients parse one shape; this one too.
            raise ToolError(unknown_tool(name))
        return await super().call_tool(name, arguments, context)

    async def _answer_ping(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """The 2026-07-28 revision dropped ping and the SDK refuses it there (-32601), but clients and
        health checks still send it to see that a server is alive: an empty result, as in the handshake era."""
        if ctx.method == "ping" and ctx.request_id is not None and ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            # A middleware that answers itself writes the era's whole envelope (resultType, serverInfo).
            server_info = Implementation(name=self.name, version=self.version)
            return {"resultType": "complete",
                    "_meta": {SERVER_INFO_META_KEY: server_info.model_dump(by_alias=True, mode="json",
                                                                           exclude_none=True)}}
        return await call_next(ctx)


def build_server(db_path: Path, operations: Sequence[Operation], store: Store | None = None, *,
                 token_verifier: TokenVerifier | None = None, auth: AuthSettings | None = None,
                 on_open: Callable[[Store], object] | None = None) -> MCPServer[AppState]:
    """An MCPServer exposing `operations`; the store is opened (and migrated) by the lifespan.

    Pass an open `store` to share one (tests); otherwise the server opens `db_path` itself.
    `token_verifier` and `auth` are the HTTP transport's API keys (see http_app.py); `on_open` is
    told the store the lifespan uses, for what runs outside a tool call (key checks, /healthz).
    """

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        if store is not None:
            if on_open is not None:
                on_open(store)
            yield AppState(store=store)
            return
        opened = await Store.open(db_path)
        if on_open is not None:
            on_open(opened)
        log.info("baton %s serving %d tools on %s (schema v%d)", __version__, len(operations), db_path,
                 opened.schema_version)
        try:
            # Between calls only the watcher notices a deleted -wal or a file moved over the database.
            async with anyio.create_task_group() as watcher:
                watcher.start_soon(opened.watch_files)
                try:
                    yield AppState(store=opened)
                finally:
                    watcher.cancel_scope.cancel()
        finally:
            await opened.close()

    return BatonServer(
        operations,
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        token_verifier=token_verifier,
        auth=auth,
    )


def serve(db_path: Path, operations: Sequence[Operation]) -> None:
    """Run on stdio until stdin closes or SIGINT or SIGTERM arrives; each is a clean end, exit status 0
    (a stop that was asked for and done is a success: 130/143 read as failures to supervisors).

    The store is opened (migrated, failing loudly) before the protocol is spoken. A signal cancels
    the serving loop only: calls in flight are cancelled (a write either committed, its COMMIT being
    shielded, or rolled back) and answered "Connection closed", queued answers still go out, and
    then the store closes.
    """
    # What MCPServer.run_stdio_async drives (Server.run = lifespan + serve_dual_era_loop), over
    # Baton's own stdio transport; the lifespan is entered outside the signal's scope, so opening and
    # closing the store are never interrupted half-way.
    lowlevel = build_server(db_path, operations)._lowlevel_server

    async def run() -> None:
        async with (stop_on_signals() as stop, lowlevel.lifespan(lowlevel) as state,
                    stdio_server() as (read_stream, write_stream)):
            with stop.scope():
                await serve_dual_era_loop(lowlevel, read_stream, write_stream, lifespan_state=state,
                                          init_options=lowlevel.create_initialization_options())
        if stop.signal is not None:
            log.info("stopped by %s", stop.signal.name)

    anyio.run(run)
