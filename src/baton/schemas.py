"""The JSON schemas a tool publishes: its input model's and its output model's.

Input schemas reach the model's context on every request (Claude Code sends them; it does not send
output schemas), so they carry what an agent needs and nothing else: no auto-generated titles, no
keyword that says nothing. Output schemas are complete instead: every field with its JSON type, a
nullable one as `anyOf: [{type: X}, {type: null}]`, nested models and list items with their own
properties, and `required` naming every field, since a result always carries all of them.
Nested models are written inline rather than as `$defs`/`$ref`: no model occurs twice within one
tool's result, so references would save nothing, and not every client resolves them.
"""

from __future__ import annotations

import re
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from baton.operations import Operation


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


def _without_implied(prop: dict[str, Any]) -> dict[str, Any]:
    """Drop keywords that say nothing: `minLength: 1` beside a `pattern` that rejects the empty
    string, `additionalProperties: true` (JSON Schema's default) on a free-form object, and the
    description of a list's items when the list has its own (`depends_on`: "Groups that must be
    completed first", each "A task group's group_id")."""
    pattern = prop.get("pattern")
    implied_min = prop.get("minLength") == 1 and isinstance(pattern, str) and re.search(pattern, "") is None
    kept = {k: v for k, v in prop.items()
            if not (k == "minLength" and implied_min) and not (k == "additionalProperties" and v is True)}
    items = kept.get("items")
    if isinstance(items, dict):
        items = _without_implied(items)
        if "description" in kept:
            items.pop("description", None)
        kept["items"] = items
    return kept


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


_SCALAR_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}


def _one_of(branches: list[dict[str, Any]]) -> dict[str, Any]:
    """One schema, or `anyOf` branches (never a `type` array: clients that map schemas onto a
    single-type dialect, Gemini's OpenAPI subset, reject it, and the Inspector's `--strict` flags it)."""
    unique: list[dict[str, Any]] = []
    for branch in branches:
        for flat in branch["anyOf"] if list(branch) == ["anyOf"] else [branch]:
            if flat not in unique:
                unique.append(flat)
    return unique[0] if len(unique) == 1 else {"anyOf": unique}


def value_schema(annotation: Any) -> dict[str, Any]:
    """The JSON schema of a value with this annotation, as `model_dump(mode="json")` writes it.

    Read from the annotation rather than from `model_json_schema()`: that builds every output model's
    core schema, a tenth of the server's start-up, and spells nested models as `$ref`s."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return value_schema(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        return _one_of([value_schema(arg) for arg in get_args(annotation)])
    if origin is Literal:
        return _one_of([{"type": _SCALAR_TYPES[type(value)]} for value in get_args(annotation)])
    if annotation in _SCALAR_TYPES:
        return {"type": _SCALAR_TYPES[annotation]}
    if origin in (list, tuple, set, frozenset):
        items = [arg for arg in get_args(annotation) if arg is not Ellipsis]
        return {"type": "array", "items": _one_of([value_schema(arg) for arg in items])} if items else {"type": "array"}
    if origin is dict or annotation is dict:
        values = get_args(annotation)[1:]
        if not values or values[0] is Any:
            return {"type": "object"}
        return {"type": "object", "additionalProperties": value_schema(values[0])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_schema(annotation)
    # An output field must say what it holds: `{}` accepts anything and the Inspector's --strict flags it.
    raise TypeError(f"no JSON type for the output annotation {annotation!r}")


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        schema = value_schema(field.annotation)
        properties[name] = {**schema, "description": field.description} if field.description else schema
    return {"type": "object", "properties": properties, "required": list(properties)}


def output_schema(operation: Operation) -> dict[str, Any]:
    """The complete schema of the tool's structured result; the result is also validated against
    the pydantic model itself before it is sent."""
    return model_schema(operation.output_model)
