"""JSON-RPC frames: one line off the wire in, the message to serve and the answers to write out.

The SDK's own reader drops what pydantic's JSON parser refuses (a lone surrogate escape, deep
nesting, long integers) and every malformed message without a word, so the client waits forever.
Here every line that is a request gets an answer: -32700 (id null) for what is not JSON, -32600
for what is not a request object, -32602 for params that are not an object or hold an integer too
long to convert. Anything well formed goes on to the SDK, bad tool arguments included: the
operations reject those as `invalid: ...` (invalid UTF-8 arrives there as lone surrogates, which
they name). A message nested too deeply for Python's parser is answered with the id found in its
first 64 KiB. Notifications and responses are never answered; a malformed one is logged and dropped.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

from mcp.shared.message import SessionMessage
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

log = logging.getLogger("baton.frames")

MAX_INT_DIGITS = 4300  # CPython's own default limit: converting longer digit strings is quadratic

_DECODER = json.JSONDecoder()
# A JSON string (possessive: no backtracking), a lone quote (an unterminated string), or a bracket.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*+"|["{}\[\]]', re.DOTALL)
_COLON = re.compile(r"\s*:\s*")
SALVAGE_CHARS = 64 * 1024


def _error(request_id: Any, code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _salvage_id(text: str) -> tuple[Any, bool]:
    """For a message too deeply nested to parse: its top-level `id` (None if not found or not an id),
    and whether it surely has none. Found without recursion, in the first SALVAGE_CHARS only (clients
    put `id` before `params`): a Python-level scan of megabytes of brackets would hold up the server."""
    depth, pos, prefix = 0, 0, text[:SALVAGE_CHARS]
    while (match := _TOKEN.search(prefix, pos)) is not None:
        token, pos = match.group(), match.end()
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
        elif token == '"':
            return None, False
        elif depth == 1 and token == '"id"' and (colon := _COLON.match(prefix, pos)) is not None:
            try:
                value, _ = _DECODER.raw_decode(prefix, colon.end())
            except (ValueError, RecursionError):
                return None, False
            return (value if _is_id(value) else None), False
    return None, len(text) <= SALVAGE_CHARS


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> tuple[Any, int]:
    """The JSON value and how many of its integers are too long to convert (each then read as null)."""
    if 0 < sys.get_int_max_str_digits() <= MAX_INT_DIGITS:  # unless PYTHONINTMAXSTRDIGITS raised it
        try:
            return json.loads(text, parse_constant=_no_constant), 0
        except json.JSONDecodeError:
            raise
        except ValueError:
            pass  # an integer over the digit limit (or NaN): only now pay a Python call per integer
    long_ints = 0

    def parse_int(digits: str) -> int | None:
        nonlocal long_ints
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            long_ints += 1
            return None
        return int(digits)

    return json.loads(text, parse_int=parse_int, parse_constant=_no_constant), long_ints


def interpret(line: bytes) -> tuple[SessionMessage | None, list[JSONRPCError]]:
    """One line off the wire: the message to pass on (if any) and the answers to write back."""
    # Invalid UTF-8 becomes lone surrogates, which the operations refuse as `invalid` with a path.
    text = line.decode("utf-8", "surrogateescape")
    if not text.strip():
        return None, []
    try:
        value, long_ints = _loads(text)
    except RecursionError:
        problem = "Invalid request: nested too deeply to parse (about 1,000 levels at most)"
        request_id, surely_none = _salvage_id(text)
        if surely_none:  # a notification, or no message at all: nobody waits for an answer
            log.warning("dropped a message without an id: %s", problem)
            return None, []
        return None, [_error(request_id, INVALID_REQUEST, problem)]
    except ValueError as exc:
        return None, [_error(None, PARSE_ERROR, f"Parse error: {exc}")]
    if isinstance(value, list):
        return None, _refuse_batch(value)
    return _check(value, long_ints)


def _refuse_batch(batch: list[Any]) -> list[JSONRPCError]:
    why = "JSON-RPC batches are not supported (MCP 2025-06-18 removed them): send one message per line"
    answers = [_error(m["id"], INVALID_REQUEST, why) for m in batch
               if isinstance(m, dict) and "method" in m and _is_id(m.get("id"))]
    only_notifications = batch and all(isinstance(m, dict) and "method" in m and "id" not in m for m in batch)
    return answers or ([] if only_notifications else [_error(None, INVALID_REQUEST, why)])


def _check(value: Any, long_ints: int) -> tuple[SessionMessage | None, list[JSONRPCError]]:
    if not isinstance(value, dict):
        return None, [_error(None, INVALID_REQUEST, "Invalid request: a message must be a JSON object")]
    if "method" not in value and ("result" in value or "error" in value):
        problem, code = None, INVALID_REQUEST  # a response to the server: passed on if valid, never answered
        answerable = False
    else:
        problem, code = _problem(value, long_ints)
        answerable = "id" in value or "method" not in value  # a notification (method, no id) never is
    if problem is None:
        try:
            return SessionMessage(jsonrpc_message_adapter.validate_python(value, by_name=False)), []
        except ValidationError as exc:
            problem = f"Invalid request: {exc.errors(include_url=False)[0]['msg']}"
    if not answerable:
        log.warning("dropped a malformed message that expects no answer (%s): %.200r", problem, value)
        return None, []
    request_id = value.get("id")
    return None, [_error(request_id if _is_id(request_id) else None, code, problem)]


def _problem(value: dict[str, Any], long_ints: int) -> tuple[str | None, int]:
    """What makes this request or notification unfit for the SDK, and its error code; (None, 0) if nothing."""
    if "id" in value and not _is_id(value["id"]):
        return f"Invalid request: id must be a string or an integer of at most {MAX_INT_DIGITS} digits", INVALID_REQUEST
    if value.get("jsonrpc") != "2.0":
        return 'Invalid request: jsonrpc must be "2.0"', INVALID_REQUEST
    if not isinstance(value.get("method"), str):
        return "Invalid request: method must be a string", INVALID_REQUEST
    params = value.get("params")
    if params is not None and not isinstance(params, dict):
        return "Invalid params: params must be a JSON object", INVALID_PARAMS
    if long_ints:
        return (f"Invalid params: an integer has more than {MAX_INT_DIGITS} digits "
                "(Baton's integers are at most 64 bits)"), INVALID_PARAMS
    return None, 0


def encode(message: JSONRPCMessage) -> bytes:
    """One wire line. A string the client sent with a lone surrogate (an id, a tool name) is echoed
    back as a `\\udXXX` escape; an answer that cannot be serialised at all becomes an internal error."""
    try:
        return message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
    except PydanticSerializationError:
        pass
    try:
        data = message.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"
    except (PydanticSerializationError, ValueError, RecursionError) as exc:
        log.error("an answer could not be serialised: %s", exc)
    request_id = getattr(message, "id", None)
    if "method" in type(message).model_fields or not _is_id(request_id):
        return b""
    return encode(_error(request_id, INTERNAL_ERROR, "the answer could not be serialised as JSON (a Baton bug)"))
