"""The published output schemas are read from the output models' annotations (fast at start-up);
they must say exactly what pydantic's own JSON schema of each output model says at the top level."""

from __future__ import annotations

from typing import Any

import pytest

from baton.operations import Operation
from baton.server import output_schema
from baton.tools import catalog


def _reference_types(node: dict[str, Any]) -> list[str]:
    """The JSON types of one property of pydantic's JSON schema (a `$ref` is a nested model: object)."""
    if "$ref" in node:
        return ["object"]
    if "anyOf" in node:
        return [t for branch in node["anyOf"] for t in _reference_types(branch)]
    return [node["type"]] if "type" in node else []


def _reference(operation: Operation) -> dict[str, list[str]]:
    full = operation.output_model.model_json_schema()
    return {name: list(dict.fromkeys(_reference_types(prop))) for name, prop in full["properties"].items()}


def _published(operation: Operation) -> dict[str, list[str]]:
    """Field -> JSON types as published: properties, plus the "Also (or null): string a, b; integer c."
    fields of the description (each a single type or null)."""
    schema = output_schema(operation)
    published = {
        name: [branch["type"] for branch in prop["anyOf"]] if "anyOf" in prop else [prop["type"]] if prop else []
        for name, prop in schema["properties"].items()
    }
    description = schema.get("description", "")
    if description:
        assert description.startswith("Also (or null): ") and description.endswith(".")
        for group in description.removeprefix("Also (or null): ").removesuffix(".").split("; "):
            kind, names = group.split(" ", 1)
            for name in names.split(", "):
                assert name not in published, name
                published[name] = [kind, "null"]
    return published


@pytest.mark.parametrize("name", list(catalog()))
def test_output_schema_types_match_pydantic(name: str) -> None:
    """Every top-level output field is published with the JSON type(s) pydantic's JSON schema gives it."""
    operation = catalog()[name]
    published, reference = _published(operation), _reference(operation)
    assert published.keys() == reference.keys()
    for field, types in reference.items():
        assert sorted(published[field]) == sorted(types), field
    assert all(prop for prop in output_schema(operation)["properties"].values()), "no property without a type"
