"""A small JSON Schema (2020-12) validator for the keywords our generated schemas use.

The venv has no ``jsonschema`` package and the contract tests must not add a dependency; this covers local
``$ref``, ``anyOf``/``oneOf``/``allOf``, ``const``, ``enum``, ``type``, object, array, string and numeric
keywords, and fails loudly on any other constraining keyword so that it never passes a record by ignoring
a rule it does not know.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from payments.schemas.compat import JsonSchema, resolve_pointer

_IGNORED = frozenset(
    {
        "$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default", "deprecated",
        "readOnly", "writeOnly", "discriminator", "format", "x-topic", "x-role", "x-schema-mode",
    }
)  # fmt: skip
_HANDLED = frozenset(
    {
        "$ref", "anyOf", "oneOf", "allOf", "const", "enum", "type", "properties", "required",
        "additionalProperties", "items", "prefixItems", "minItems", "maxItems", "uniqueItems", "minLength",
        "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    }
)  # fmt: skip


def errors(schema: JsonSchema, instance: Any) -> list[str]:
    """Every way ``instance`` violates ``schema``, as "path: reason"; empty when it is valid."""
    return _errors(schema, schema, instance, "$")


def _is_type(value: Any, kind: str) -> bool:
    match kind:
        case "null":
            return value is None
        case "boolean":
            return isinstance(value, bool)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "string":
            return isinstance(value, str)
        case "array":
            return isinstance(value, list)
        case "object":
            return isinstance(value, dict)
    raise ValueError(f"unknown JSON type {kind!r}")


def _errors(root: JsonSchema, schema: JsonSchema, value: Any, path: str) -> list[str]:
    unknown = set(schema) - _IGNORED - _HANDLED
    if unknown:
        raise ValueError(f"validator does not implement {sorted(unknown)} (at {path})")
    out: list[str] = []
    if "$ref" in schema:
        out += _errors(root, resolve_pointer(root, schema["$ref"]), value, path)
    for sub in schema.get("allOf", ()):
        out += _errors(root, sub, value, path)
    if "anyOf" in schema and not any(not _errors(root, s, value, path) for s in schema["anyOf"]):
        out.append(f"{path}: matches no anyOf member")
    if "oneOf" in schema:
        matching = sum(1 for s in schema["oneOf"] if not _errors(root, s, value, path))
        if matching != 1:
            out.append(f"{path}: matches {matching} oneOf members, not exactly one")
    if "const" in schema and not _same(value, schema["const"]):
        out.append(f"{path}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
        out.append(f"{path}: {value!r} is not one of {schema['enum']!r}")
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is_type(value, k) for k in kinds):
            return [*out, f"{path}: {value!r} is not of type {kinds}"]
    if isinstance(value, dict):
        out += _object_errors(root, schema, value, path)
    elif isinstance(value, list):
        out += _array_errors(root, schema, value, path)
    elif isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            out.append(f"{path}: length {len(value)} out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} does not match {schema['pattern']!r}")
    elif _is_type(value, "number"):
        out += _number_errors(schema, value, path)
    return out


def _object_errors(root: JsonSchema, schema: JsonSchema, value: dict[str, Any], path: str) -> list[str]:
    out = [f"{path}: missing required {name!r}" for name in schema.get("required", ()) if name not in value]
    props: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            out += _errors(root, props[name], item, f"{path}.{name}")
        elif extra is False:
            out.append(f"{path}: unexpected property {name!r}")
        elif isinstance(extra, dict):
            out += _errors(root, extra, item, f"{path}.{name}")
    return out


def _array_errors(root: JsonSchema, schema: JsonSchema, value: list[Any], path: str) -> list[str]:
    out: list[str] = []
    if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
        out.append(f"{path}: {len(value)} items out of bounds")
    prefix = schema.get("prefixItems", [])
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else schema.get("items")
        if isinstance(sub, dict):
            out += _errors(root, sub, item, f"{path}[{i}]")
    if schema.get("uniqueItems") and len({repr(v) for v in value}) != len(value):
        out.append(f"{path}: items are not unique")
    return out


def _number_errors(schema: JsonSchema, value: float, path: str) -> list[str]:
    bounds: dict[str, Callable[[float], bool]] = {
        "minimum": lambda bound: value >= bound,
        "maximum": lambda bound: value <= bound,
        "exclusiveMinimum": lambda bound: value > bound,
        "exclusiveMaximum": lambda bound: value < bound,
        "multipleOf": lambda bound: value % bound == 0,
    }
    return [
        f"{path}: {value} violates {k}={schema[k]}"
        for k, ok in bounds.items()
        if k in schema and not ok(schema[k])
    ]


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 and True are different values, although Python says 1 == True.
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else bool(a == b)
