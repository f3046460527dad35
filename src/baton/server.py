"""MCP wiring: one tool per operation in the table, served over stdio.

The only module that imports the MCP SDK. Each tool receives the raw arguments, which the
operation validates with its own input model, so every bad input, including a wrong type or a
missing field, becomes `invalid: ...` rather than the SDK's own wording. The published
inputSchema is the input model's JSON schema; the outputSchema is the output model's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict

from baton import __version__
from baton.errors import BatonError
from baton.operations import Operation
from baton.store import Store

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


# Every tool schema costs the agent context on every request, so schemas carry what a model
# needs and nothing else: no auto-generated titles, and output schemas one level deep.


def _without_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_titles(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_without_titles(v) for v in node]
    return node


def _without_null_default(prop: dict[str, Any]) -> dict[str, Any]:
    """`{"anyOf": [X, {"type": "null"}], "default": null}` -> X: an optional parameter is simply omitted."""
    branches = prop.get("anyOf")
    if prop.get("default", 0) is None and isinstance(branches, list) and len(branches) == 2 \
            and {"type": "null"} in branches:
        (kept,) = [b for b in branches if b != {"type": "null"}]
        rest = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
        return {**kept, **rest}
    return prop


def input_schema(operation: Operation) -> dict[str, Any]:
    schema: dict[str, Any] = _without_titles(operation.input_model.model_json_schema())
    schema.pop("description", None)
    # Unknown parameters are still refused (`invalid: unknown parameter 'x' (allowed: ...)`), but the
    # schema does not say `additionalProperties: false`: 28 characters on every tool in every client's
    # context, and a keyword some model providers' schema dialects (Gemini's) do not accept.
    schema.pop("additionalProperties", None)
    schema["properties"] = {
        name: _without_implied(_without_null_default(p)) for name, p in schema["properties"].items()
    }
    return schema


def _without_implied(prop: dict[str, Any]) -> dict[str, Any]:
    """Drop keywords that say nothing: `minLength: 1` beside a `pattern` that rejects the empty
    string, and `additionalProperties: true` (JSON Schema's default) on a free-form object."""
    pattern = prop.get("pattern")
    implied_min = prop.get("minLength") == 1 and isinstance(pattern, str) and re.search(pattern, "") is None
    return {k: v for k, v in prop.items()
            if not (k == "minLength" and implied_min) and not (k == "additionalProperties" and v is True)}


_SCALAR_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}


def json_types(annotation: Any) -> list[str]:
    """The JSON types a field with this annotation is serialised as (nested models are `object`).

    Read from the annotation rather than from `model_json_schema()`: generating every output
    model's full JSON schema only to keep its top level was a tenth of the server's start-up.
    """
    origin = get_origin(annotation)
    if origin is Annotated:
        return json_types(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        return [t for arg in get_args(annotation) for t in json_types(arg)]
    if origin is Literal:
        return [_SCALAR_TYPES[type(value)] for value in get_args(annotation)]
    if annotation in _SCALAR_TYPES:
        return [_SCALAR_TYPES[annotation]]
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, frozenset):
        return ["array"]
    if origin is dict or annotation is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return ["object"]
    return []  # Any: no type to state


def _shallow(types: list[str]) -> dict[str, Any]:
    """A field's schema reduced to its JSON type(s). Several types are `anyOf` branches, never a
    `type` array: clients that map schemas onto a single-type dialect (Gemini's OpenAPI subset)
    reject arrays; the Inspector's `--strict` flags them."""
    if len(types) > 1:
        return {"anyOf": [{"type": t} for t in types]}
    return {"type": types[0]} if types else {}


def output_schema(operation: Operation) -> dict[str, Any]:
    """A correct but shallow output schema: top-level fields and their types. The structured
    result is still validated against the full pydantic model before it is sent.

    Fields that are a single type or null are named in the description instead of as properties
    (an unlisted property may hold anything): spelled `anyOf: [{type: X}, {type: null}]` they cost
    45 characters each, a quarter of the core profile's output schemas in every client's context,
    and `{}` is flagged by the Inspector's `--strict` as constraining nothing.
    """
    properties: dict[str, Any] = {}
    nullable: dict[str, list[str]] = {}
    for name, field in operation.output_model.model_fields.items():
        types = list(dict.fromkeys(json_types(field.annotation)))
        if len(types) == 2 and "null" in types:
            (kind,) = [t for t in types if t != "null"]
            nullable.setdefault(kind, []).append(name)
        else:
            properties[name] = _shallow(types)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if nullable:
        schema["description"] = "Also (or null): " + "; ".join(
            f"{kind} {', '.join(names)}" for kind, names in nullable.items()) + "."
    return schema


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


def _tool_for(operation: Operation) -> Tool:
    async def call(arguments: dict[str, Any], ctx: Context[AppState]) -> CallToolResult:
        store = ctx.request_context.lifespan_context.store
        try:
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


def build_server(db_path: Path, operations: Sequence[Operation], store: Store | None = None) -> MCPServer[AppState]:
    """An MCPServer exposing `operations`; the store is opened (and migrated) by the lifespan.

    Pass an open `store` to share one (tests); otherwise the server opens `db_path` itself.
    """

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        if store is not None:
            yield AppState(store=store)
            return
        opened = await Store.open(db_path)
        log.info("baton %s serving %d tools on %s (schema v%d)", __version__, len(operations), db_path,
                 opened.schema_version)
        try:
            yield AppState(store=opened)
        finally:
            await opened.close()

    return MCPServer(
        "baton",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        tools=[_tool_for(op) for op in operations],
    )


def serve(db_path: Path, operations: Sequence[Operation]) -> None:
    """Run on stdio until stdin closes. The schema is migrated before the first request is read."""
    import anyio

    # Migrate (and fail loudly) before speaking the protocol at all.
    async def prepare() -> None:
        store = await Store.open(db_path)
        await store.close()

    anyio.run(prepare)
    build_server(db_path, operations).run()
