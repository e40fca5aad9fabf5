"""compat.breaking_changes: real breaking changes are caught, compatible ones pass. Pure, no broker."""

from __future__ import annotations

import copy
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from payments.schemas.compat import AllowedChange, ChangeKind, JsonSchema, Problem, Role, breaking_changes
from payments.schemas.export import MessageType, json_schema

# Shaped like pydantic's output: $defs, a $ref'd enum, nullable anyOf, an array of a $ref'd object that is
# also referenced through anyOf, integer bounds, and a version const.
BASE: JsonSchema = {
    "$defs": {
        "Status": {"enum": ["open", "closed"], "title": "Status", "type": "string"},
        "Item": {
            "properties": {
                "sku": {"maxLength": 64, "type": "string"},
                "qty": {"minimum": 1, "type": "integer"},
            },
            "required": ["sku", "qty"],
            "title": "Item",
            "type": "object",
        },
    },
    "properties": {
        "v": {"const": 1, "default": 1, "type": "integer"},
        "id": {"description": "the id", "type": "string"},
        "status": {"$ref": "#/$defs/Status"},
        "amount": {"exclusiveMinimum": 0, "maximum": 1000, "type": "integer"},
        "note": {"anyOf": [{"maxLength": 500, "type": "string"}, {"type": "null"}], "default": None},
        "items": {"items": {"$ref": "#/$defs/Item"}, "type": "array"},
        "parent": {"anyOf": [{"$ref": "#/$defs/Item"}, {"type": "null"}]},
    },
    "required": ["v", "id", "status", "amount", "note", "items", "parent"],
    "title": "Thing",
    "type": "object",
}

Edit = Callable[[JsonSchema], object]


def changed(edit: Edit, base: JsonSchema = BASE) -> JsonSchema:
    new = copy.deepcopy(base)
    edit(new)
    return new


def kinds(problems: list[Problem]) -> set[tuple[ChangeKind, str]]:
    return {(p.kind, p.pointer) for p in problems}


def props(s: JsonSchema) -> dict[str, Any]:
    properties: dict[str, Any] = s["properties"]
    return properties


def rename_id(s: JsonSchema) -> None:
    props(s)["ident"] = props(s).pop("id")
    s["required"] = ["ident" if r == "id" else r for r in s["required"]]


def drop_required(name: str) -> Edit:
    return lambda s: s["required"].remove(name)


BREAKING: list[tuple[str, Edit, ChangeKind, str]] = [
    ("removed property", lambda s: props(s).pop("note"), ChangeKind.PROPERTY_REMOVED, "#/properties/note"),
    ("renamed property", rename_id, ChangeKind.PROPERTY_REMOVED, "#/properties/id"),
    (
        "type change",
        lambda s: props(s)["amount"].update(type="string"),
        ChangeKind.TYPE_CHANGED,
        "#/properties/amount",
    ),
    (
        "integer widened to number",
        lambda s: props(s)["amount"].update(type="number"),
        ChangeKind.TYPE_WIDENED,
        "#/properties/amount",
    ),
    (
        "always present becomes optional",
        drop_required("id"),
        ChangeKind.REQUIRED_DROPPED,
        "#/properties/id",
    ),
    (
        "becomes nullable",
        lambda s: props(s).update(id={"anyOf": [{"type": "string"}, {"type": "null"}]}),
        ChangeKind.TYPE_WIDENED,
        "#/properties/id",
    ),
    (
        "null no longer accepted",
        lambda s: props(s).update(note={"maxLength": 500, "type": "string"}),
        ChangeKind.TYPE_NARROWED,
        "#/properties/note/anyOf/1",
    ),
    (
        "enum value removed",
        lambda s: s["$defs"]["Status"].update(enum=["open"]),
        ChangeKind.ENUM_VALUE_REMOVED,
        "#/$defs/Status",
    ),
    (
        "enum value added",
        lambda s: s["$defs"]["Status"]["enum"].append("frozen"),
        ChangeKind.ENUM_VALUE_ADDED,
        "#/$defs/Status",
    ),
    (
        "upper bound narrowed",
        lambda s: props(s)["amount"].update(maximum=500),
        ChangeKind.CONSTRAINT_TIGHTENED,
        "#/properties/amount",
    ),
    (
        "upper bound widened",
        lambda s: props(s)["amount"].update(maximum=5000),
        ChangeKind.CONSTRAINT_LOOSENED,
        "#/properties/amount",
    ),
    (
        "maxLength narrowed through anyOf",
        lambda s: props(s)["note"]["anyOf"][0].update(maxLength=100),
        ChangeKind.CONSTRAINT_TIGHTENED,
        "#/properties/note/anyOf/0",
    ),
    (
        "pattern added",
        lambda s: props(s)["id"].update(pattern="^[a-z]+$"),
        ChangeKind.CONSTRAINT_TIGHTENED,
        "#/properties/id",
    ),
    (
        "version const bump",
        lambda s: props(s)["v"].update(const=2, default=2),
        ChangeKind.CONST_CHANGED,
        "#/properties/v",
    ),
    (
        "type change nested in $defs",
        lambda s: s["$defs"]["Item"]["properties"]["qty"].update(type="string"),
        ChangeKind.TYPE_CHANGED,
        "#/$defs/Item/properties/qty",
    ),
    (
        "property removed nested in $defs",
        lambda s: s["$defs"]["Item"]["properties"].pop("sku"),
        ChangeKind.PROPERTY_REMOVED,
        "#/$defs/Item/properties/sku",
    ),
    (
        "array item type change",
        lambda s: props(s)["items"].update(items={"type": "string"}),
        ChangeKind.TYPE_CHANGED,
        "#/$defs/Item",
    ),
]


@pytest.mark.parametrize(("edit", "kind", "pointer"), [b[1:] for b in BREAKING], ids=[b[0] for b in BREAKING])
@pytest.mark.parametrize("role", list(Role))
def test_breaking_change_is_caught(edit: Edit, kind: ChangeKind, pointer: str, role: Role) -> None:
    problems = breaking_changes(BASE, changed(edit), role=role)
    assert (kind, pointer) in kinds(problems), [str(p) for p in problems]


def test_a_shared_def_is_reported_once_with_where_a_reader_meets_it() -> None:
    new = changed(lambda s: s["$defs"]["Item"]["properties"]["qty"].update(type="string"))
    (problem,) = breaking_changes(BASE, new, role=Role.OUTPUT)
    assert problem.path in {"items[].qty", "parent.qty"}
    assert "#/$defs/Item/properties/qty" in str(problem)


def test_a_def_reached_only_through_any_of_is_followed() -> None:
    base = changed(lambda s: props(s).pop("items"))
    base["required"].remove("items")
    new = changed(lambda s: s["$defs"]["Item"]["properties"]["sku"].update(maxLength=8), base)
    (problem,) = breaking_changes(base, new, role=Role.OUTPUT)
    assert (problem.kind, problem.path) == (ChangeKind.CONSTRAINT_TIGHTENED, "parent.sku")


@pytest.mark.parametrize("role", list(Role))
def test_new_optional_property_is_compatible(role: Role) -> None:
    new = changed(lambda s: props(s).update(extra={"anyOf": [{"type": "string"}, {"type": "null"}]}))
    assert breaking_changes(BASE, new, role=role) == []


def test_new_required_property_breaks_inputs_but_not_outputs() -> None:
    # Input: old writers never send it. Output (serialization): "required" says this version always writes
    # it; older records lack it, which readers of a property added later must tolerate (docs/contracts.md).
    def add(s: JsonSchema) -> None:
        props(s)["extra"] = {"type": "string"}
        s["required"].append("extra")

    problems = breaking_changes(BASE, changed(add), role=Role.INPUT)
    assert kinds(problems) == {(ChangeKind.REQUIRED_ADDED, "#/properties/extra")}
    assert breaking_changes(BASE, changed(add), role=Role.OUTPUT) == []


def test_optional_property_becoming_required_is_caught() -> None:
    base = changed(drop_required("note"))
    problems = breaking_changes(base, BASE, role=Role.OUTPUT)
    assert kinds(problems) == {(ChangeKind.REQUIRED_ADDED, "#/properties/note")}


def test_property_added_to_a_closed_object_is_caught() -> None:
    # Readers with extra="forbid" (the processor for commands, the psp-caller for PSP requests) would skip
    # such a record as undecodable.
    base = changed(lambda s: s.update(additionalProperties=False))
    new = changed(lambda s: props(s).update(extra={"type": "string"}), base)
    problems = breaking_changes(base, new, role=Role.OUTPUT)
    assert kinds(problems) == {(ChangeKind.PROPERTY_ADDED_TO_CLOSED_OBJECT, "#/properties/extra")}


def test_closing_an_input_object_is_caught() -> None:
    new = changed(lambda s: s.update(additionalProperties=False))
    assert kinds(breaking_changes(BASE, new, role=Role.INPUT)) == {
        (ChangeKind.ADDITIONAL_PROPERTIES_FORBIDDEN, "#")
    }


NON_BREAKING: list[tuple[str, Edit]] = [
    ("identical", lambda s: None),
    ("description changed", lambda s: props(s)["id"].update(description="the thing's id")),
    ("description added", lambda s: props(s)["amount"].update(description="minor units")),
    ("title and examples changed", lambda s: s.update(title="Renamed", examples=[{"id": "x"}])),
    ("default changed", lambda s: props(s)["v"].update(default=None)),
    ("enum reordered", lambda s: s["$defs"]["Status"].update(enum=["closed", "open"])),
    ("equivalent integer bound", lambda s: props(s)["amount"].update(minimum=1, exclusiveMinimum=None)),
    ("anyOf members reordered", lambda s: props(s)["note"]["anyOf"].reverse()),
]


def _without_nones(s: JsonSchema) -> JsonSchema:
    if isinstance(s, dict):
        return {k: _without_nones(v) for k, v in s.items() if v is not None or k in {"const", "default"}}
    return s


@pytest.mark.parametrize("edit", [c[1] for c in NON_BREAKING], ids=[c[0] for c in NON_BREAKING])
@pytest.mark.parametrize("role", list(Role))
def test_compatible_change_passes(edit: Edit, role: Role) -> None:
    new = _without_nones(changed(edit))
    assert breaking_changes(BASE, new, role=role) == []


def test_renamed_def_with_the_same_shape_is_compatible() -> None:
    def rename(s: JsonSchema) -> None:
        s["$defs"]["Line"] = s["$defs"].pop("Item")
        props(s)["items"]["items"] = {"$ref": "#/$defs/Line"}
        props(s)["parent"]["anyOf"][0] = {"$ref": "#/$defs/Line"}

    assert breaking_changes(BASE, changed(rename), role=Role.OUTPUT) == []


def test_allowed_change_is_waived_and_only_that_one() -> None:
    def edit(s: JsonSchema) -> None:
        s["$defs"]["Status"]["enum"].append("frozen")
        props(s)["amount"]["maximum"] = 10

    allow = AllowedChange("#/$defs/Status", ChangeKind.ENUM_VALUE_ADDED, "consumers upgraded first")
    problems = breaking_changes(BASE, changed(edit), role=Role.OUTPUT, allowed=[allow])
    assert kinds(problems) == {(ChangeKind.CONSTRAINT_TIGHTENED, "#/properties/amount")}


UNION: JsonSchema = {
    "$defs": {
        "A": {
            "properties": {"type": {"const": "a", "type": "string"}},
            "required": ["type"],
            "type": "object",
        },
        "B": {
            "properties": {"type": {"const": "b", "type": "string"}},
            "required": ["type"],
            "type": "object",
        },
    },
    "discriminator": {"mapping": {"a": "#/$defs/A", "b": "#/$defs/B"}, "propertyName": "type"},
    "oneOf": [{"$ref": "#/$defs/A"}, {"$ref": "#/$defs/B"}],
}


def test_union_members_pair_by_tag_not_position() -> None:
    reordered = changed(lambda s: s["oneOf"].reverse(), UNION)
    assert breaking_changes(UNION, reordered, role=Role.INPUT) == []


def test_union_member_added_and_removed_are_caught() -> None:
    def add_c(s: JsonSchema) -> None:
        s["$defs"]["C"] = {"properties": {"type": {"const": "c", "type": "string"}}, "type": "object"}
        s["oneOf"].append({"$ref": "#/$defs/C"})

    assert {p.kind for p in breaking_changes(UNION, changed(add_c, UNION), role=Role.INPUT)} == {
        ChangeKind.UNION_MEMBER_ADDED
    }
    without_b = changed(lambda s: s["oneOf"].pop(), UNION)
    assert kinds(breaking_changes(UNION, without_b, role=Role.INPUT)) == {
        (ChangeKind.UNION_MEMBER_REMOVED, "#/$defs/B")
    }


def test_a_change_inside_a_union_member_names_the_member() -> None:
    new = changed(lambda s: s["$defs"]["B"]["properties"].update(n={"type": "integer"}), UNION)
    new["$defs"]["B"]["required"].append("n")
    (problem,) = breaking_changes(UNION, new, role=Role.INPUT)
    assert (problem.kind, problem.path) == (ChangeKind.REQUIRED_ADDED, "<type=b>.n")


def test_unresolvable_reference_is_reported_not_ignored() -> None:
    new = changed(lambda s: props(s).update(status={"$ref": "#/$defs/Missing"}))
    assert ChangeKind.UNRESOLVABLE in {p.kind for p in breaking_changes(BASE, new, role=Role.OUTPUT)}


# The same rules through real pydantic models and the exporter, which is how developers meet them.


class Colour(StrEnum):
    RED = "red"


class MoreColour(StrEnum):
    RED = "red"
    BLUE = "blue"


class V1(BaseModel):
    v: Literal[1] = 1
    x: int
    colour: Colour


class V1Defaulted(BaseModel):
    v: Literal[1] = 1
    x: int = 0  # still written on every record: not a change for readers of a serialized record
    colour: Colour


class V1Optional(BaseModel):
    v: Literal[1] = 1
    x: int
    colour: Colour
    note: str | None = Field(default=None, description="new and optional")


class V1Nullable(BaseModel):
    v: Literal[1] = 1
    x: int | None = None
    colour: Colour


class V1MoreColour(BaseModel):
    v: Literal[1] = 1
    x: int
    colour: MoreColour


class V2(BaseModel):
    v: Literal[2] = 2
    x: int
    colour: Colour


class V1Strict(V1):
    model_config = ConfigDict(extra="forbid")


class V1StrictOptional(V1Optional):
    model_config = ConfigDict(extra="forbid")


def schema_of(model: type[BaseModel], role: Role) -> JsonSchema:
    return json_schema(MessageType("thing", "t", TypeAdapter(model), role, "test"))


@pytest.mark.parametrize(
    ("model", "role", "expected"),
    [
        (V1Defaulted, Role.OUTPUT, set()),
        # New writers may omit x now, which a processor still on the old schema rejects.
        (V1Defaulted, Role.INPUT, {ChangeKind.REQUIRED_DROPPED}),
        (V1Optional, Role.OUTPUT, set()),
        (V1Optional, Role.INPUT, set()),
        (V1Nullable, Role.OUTPUT, {ChangeKind.TYPE_WIDENED}),
        (V1MoreColour, Role.OUTPUT, {ChangeKind.ENUM_VALUE_ADDED}),
        (V2, Role.OUTPUT, {ChangeKind.CONST_CHANGED}),
    ],
    ids=lambda p: getattr(p, "__name__", str(p)),
)
def test_model_evolution(model: type[BaseModel], role: Role, expected: set[ChangeKind]) -> None:
    problems = breaking_changes(schema_of(V1, role), schema_of(model, role), role=role)
    assert {p.kind for p in problems} == expected, [str(p) for p in problems]


def test_input_field_losing_its_default_is_caught() -> None:
    old, new = schema_of(V1Defaulted, Role.INPUT), schema_of(V1, Role.INPUT)
    problems = breaking_changes(old, new, role=Role.INPUT)
    assert {(p.kind, p.path) for p in problems} == {(ChangeKind.REQUIRED_ADDED, "x")}


def test_optional_field_on_a_closed_model_is_reported() -> None:
    problems = breaking_changes(
        schema_of(V1Strict, Role.INPUT), schema_of(V1StrictOptional, Role.INPUT), role=Role.INPUT
    )
    assert {p.kind for p in problems} == {ChangeKind.PROPERTY_ADDED_TO_CLOSED_OBJECT}


def test_numeric_widening_inside_a_nullable_union_is_caught_both_ways() -> None:
    old = {"properties": {"a": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}, "type": "object"}
    new = {"properties": {"a": {"anyOf": [{"type": "number"}, {"type": "null"}]}}, "type": "object"}
    assert [p.kind for p in breaking_changes(old, new, role=Role.OUTPUT)] == [ChangeKind.TYPE_WIDENED]
    assert [p.kind for p in breaking_changes(new, old, role=Role.OUTPUT)] == [ChangeKind.TYPE_NARROWED]
