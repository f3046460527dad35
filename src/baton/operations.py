"""The operation table: one declarative definition per operation.

Each operation is an async handler `(store, args) -> output` in a `baton.tools` module, declared
with `@operation(...)`. From this one table come the MCP tools (server.py), the CLI subcommands
(cli.py) and the README tools table (docs.py). Nothing here imports the MCP SDK.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import math
import types
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ValidationError

from baton.errors import InvalidInput
from baton.models import Input

Profile = Literal["core", "full"]
# Structured JSON of one tool result stays under this; the SDK also sends a text copy, so a whole
# response stays under ~80k characters (Claude Code rejects results over 25k tokens).
RESPONSE_BUDGET_CHARS = 38_000

InT = TypeVar("InT", bound=Input)
OutT = TypeVar("OutT", bound=BaseModel)
Handler = Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    name: str
    title: str
    handler: Handler
    profile: Profile
    read_only: bool
    idempotent: bool
    destructive: bool = False

    # The models come from the handler's annotations, resolved on first use: resolving them all at
    # import (generic pages build their validators) is most of a CLI run's own start-up cost.
    @cached_property
    def input_model(self) -> type[Input]:
        hints = get_type_hints(self.handler)
        model: type[Input] = hints[list(inspect.signature(self.handler).parameters)[1]]
        return model

    @cached_property
    def output_model(self) -> type[BaseModel]:
        model: type[BaseModel] = get_type_hints(self.handler)["return"]
        return model

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.handler.__doc__ or self.title)

    @property
    def summary(self) -> str:
        return self.description.split("\n\n")[0].replace("\n", " ")

    def parse(self, raw: Mapping[str, Any] | None) -> Input:
        return parse_arguments(self.input_model, raw or {})

    async def run(self, store: Any, raw: Mapping[str, Any] | None) -> BaseModel:
        result: BaseModel = await self.handler(store, self.parse(raw))
        return result


_REGISTRY: dict[str, Operation] = {}


def operation(
    name: str,
    *,
    title: str,
    profile: Profile = "core",
    read_only: bool = False,
    idempotent: bool = False,
    destructive: bool = False,
) -> Callable[[Callable[[Any, InT], Awaitable[OutT]]], Callable[[Any, InT], Awaitable[OutT]]]:
    """Declare a handler as the operation `name`; its annotations give the input and output models."""

    def register(handler: Callable[[Any, InT], Awaitable[OutT]]) -> Callable[[Any, InT], Awaitable[OutT]]:
        if name in _REGISTRY:
            raise RuntimeError(f"operation {name} declared twice")
        _REGISTRY[name] = Operation(
            name=name,
            title=title,
            handler=handler,
            profile=profile,
            read_only=read_only,
            idempotent=idempotent,
            destructive=destructive,
        )
        return handler

    return register


def registry() -> dict[str, Operation]:
    return _REGISTRY


# -- argument parsing -------------------------------------------------------------------------


def field_takes_json(annotation: Any) -> bool:
    """True when a field's value is structured (number, bool, list, object) rather than plain text."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return any(field_takes_json(arg) for arg in get_args(annotation) if arg is not type(None))
    if origin is not None and getattr(origin, "__name__", "") == "Annotated":
        return field_takes_json(get_args(annotation)[0])
    if origin is Literal:
        return not all(isinstance(arg, str) for arg in get_args(annotation))
    return annotation is not str


def _children(value: Any) -> Iterable[tuple[str, Any]] | None:
    """A container's items with the path segment of each (`.key` or `[index]`); None for a leaf."""
    if isinstance(value, BaseModel):
        return ((f".{k}", v) for k, v in value.__dict__.items())
    if isinstance(value, Mapping):
        return ((f".{k}", v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return ((f"[{i}]", v) for i, v in enumerate(value))
    return None


def _located(found: tuple[list[str], str]) -> str:
    """`(reversed path segments, problem)` -> "entries[3].content: problem" ("arguments" at the top)."""
    segments, problem = found
    return f"{''.join(reversed(segments)).removeprefix('.') or 'arguments'}: {problem}"


def _unencodable(value: Any, depth: int = 0) -> tuple[list[str], str] | None:
    """Where a string that cannot be stored as UTF-8 (a lone surrogate such as "\\ud800") hides, if anywhere.
    Paths are built only for the one bad value found: arguments are walked on every call."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [], "contains a lone UTF-16 surrogate, which is not valid Unicode text; send well-formed UTF-8"
        return None
    if depth > 50:
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _unencodable(key, depth + 1):
                return [], "a key contains a lone UTF-16 surrogate; send well-formed UTF-8"  # not echoed
            found = _unencodable(item, depth + 1)
            if found:
                found[0].append(f".{key}")
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _unencodable(item, depth + 1)
            if found:
                found[0].append(f"[{index}]")
                return found
    return None


def parse_arguments(model: type[InT], raw: Mapping[str, Any]) -> InT:
    if not isinstance(raw, Mapping):
        raise InvalidInput("arguments must be a JSON object")
    bad = _unencodable(raw)
    if bad is not None:
        raise InvalidInput(_located(bad))
    data = dict(raw)
    for field_name, field in model.model_fields.items():
        value = data.get(field_name)
        # Some clients send lists and objects as JSON text; accept that, as the SDK does.
        if isinstance(value, str) and field_takes_json(field.annotation):
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                continue
            if isinstance(parsed, list | dict):
                data[field_name] = parsed
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc, model)) from None
    problem = _unstorable(parsed)
    if problem is not None:
        raise InvalidInput(_located(problem))
    return parsed


SQLITE_INT_MIN, SQLITE_INT_MAX = -(2**63), 2**63 - 1
# Deeper JSON than this cannot be serialised back out (pydantic stops at its own depth limit), so a
# write that stored it would make every later read of it fail.
MAX_NESTING = 64


def _unstorable(value: Any, depth: int = 0) -> tuple[list[str], str] | None:
    """What in validated arguments could be stored but never read back, if anything: integers beyond
    SQLite's 64 bits, NaN or infinities (not JSON), objects nested too deep."""
    if depth > MAX_NESTING:
        return [], f"nested deeper than {MAX_NESTING} levels; flatten it"
    if isinstance(value, str | bool) or value is None:
        return None
    if isinstance(value, int):
        if SQLITE_INT_MIN <= value <= SQLITE_INT_MAX:
            return None
        return [], "integer out of range; SQLite stores integers of at most 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else ([], f"{value} is not a number JSON can carry")
    for segment, item in _children(value) or ():
        found = _unstorable(item, depth + 1)
        if found:
            found[0].append(segment)
            return found
    return None


def describe_validation_error(exc: ValidationError, model: type[BaseModel]) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:8]:
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(model.model_fields)
            parts.append(f"unknown parameter {where!r} (allowed: {allowed})")
        elif error["type"] == "missing":
            parts.append(f"{where}: required")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            parts.append(f"{where}: {message}")
    more = len(exc.errors()) - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)[:2000]


# -- response budgets and cursors -------------------------------------------------------------


def cut_text(text: str | None, max_chars: int) -> tuple[str | None, bool]:
    if text is None or len(text) <= max_chars:
        return text, False
    return text[:max_chars], True


def json_cost(value: BaseModel) -> int:
    """What `value` costs in a response: its JSON as escaped inside the text copy (quotes, backslashes and
    control characters grow there), which is never less than the structured copy."""
    return len(json.dumps(value.model_dump_json())) + 1


# An object is sent back whole (get-state, get-session): once as structured content, once escaped in the
# text copy, where every quote and backslash doubles. Its JSON, escaped, must stay under this.
ESCAPED_OBJECT_LIMIT = 45_000


def require_escaped_fit(text: str, what: str) -> None:
    """Refuse an object's JSON that would not fit a response once escaped (a 30,000-character object made
    of quotes is 60,000 escaped); nothing is written."""
    escaped = len(json.dumps(text))
    if escaped > ESCAPED_OBJECT_LIMIT:
        raise InvalidInput(
            f"{what} is {escaped} characters once escaped for JSON (quotes and backslashes count twice), over "
            f"the {ESCAPED_OBJECT_LIMIT} limit that keeps it readable in one response; store large data in a file"
        )


def fit_to_budget(
    items: list[OutT], budget: int = RESPONSE_BUDGET_CHARS, *, at_least_one: bool = True
) -> tuple[list[OutT], bool]:
    """Keep the leading items whose JSON fits in the budget; say whether any were left out.

    A page keeps its first item even when that alone is over (paging must advance); a part of a larger
    answer (the dashboard's lists) passes at_least_one=False."""
    used = 0
    for index, item in enumerate(items):
        used += json_cost(item)
        if used > budget and (index > 0 or not at_least_one):
            return items[:index], True
    return items, False


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode()


def cursor_position(cursor: str | None, key: str, default: int) -> int:
    """The integer position `key` stored in a cursor, or `default` when there is no cursor."""
    value = decode_cursor(cursor).get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not SQLITE_INT_MIN <= value <= SQLITE_INT_MAX:
        raise InvalidInput("cursor is not one this operation issued; pass next_cursor from the previous page")
    return value


def decode_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        position = None
    if not isinstance(position, dict):
        raise InvalidInput("cursor is not one this server issued; pass next_cursor from the previous page")
    return position
