"""Backward compatibility of one Kafka message type's JSON Schema: committed (old) versus current (new). Pure.

A topic holds records of both versions at once (30-day retention, or forever when compacted), and its
readers and writers upgrade on their own schedules (rolling deploys, other teams' tools, downstream
services). So a change must keep both of these true:

- a reader built on the old schema can read every record the new code writes (nothing new it cannot
  handle: no new type, enum value, union member or looser constraint; nothing it relied on goes missing);
- a reader built on the new schema can read every record written under the old one (no type, enum value
  or union member dropped, no bound tightened, no property demanded that old records lack).

One exception, the one that lets contracts grow: adding a property. It is compatible when readers on the old
schema ignore unknown properties (the old object is not ``additionalProperties: false``) and, for
:attr:`Role.INPUT` schemas, the new property is not required (old writers never send it). For
:attr:`Role.OUTPUT` schemas generated in serialization mode, ``required`` means "this version always writes
it", so a new property may be required there; records written before it existed simply lack it.

Enum values added are reported (``enum_value_added``): a consumer switching on ``type`` or ``status`` would
fall through on a value it has never seen. Such a change ships after consumers are ready, through an
explicit :class:`AllowedChange`. Pattern, format and ``multipleOf`` changes are reported whenever they differ,
since inclusion of one regular expression in another is not decided here.

Problems carry a JSON pointer (RFC 6901) into the old, committed schema, where a reviewer looks, and the
place in a record (``operation.history[].status``) where a consumer meets the change.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JsonSchema = dict[str, Any]

# Constraint keywords compared besides type, const, enum, unions, properties and items. Annotations (title,
# description, examples, default...) are never compared: they do not constrain a record.
_LOWER_BOUNDS = ("minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties")
_EXACT_KEYWORDS = ("pattern", "format", "multipleOf")


class Role(StrEnum):
    INPUT = "input"  # others write it, the processor reads it: the validation-mode schema is the contract
    OUTPUT = "output"  # only we write it, anyone reads it: the serialization-mode schema is the contract


class ChangeKind(StrEnum):
    PROPERTY_REMOVED = "property_removed"
    PROPERTY_ADDED_TO_CLOSED_OBJECT = "property_added_to_closed_object"
    REQUIRED_ADDED = "required_added"
    REQUIRED_DROPPED = "required_dropped"
    ADDITIONAL_PROPERTIES_FORBIDDEN = "additional_properties_forbidden"
    TYPE_CHANGED = "type_changed"
    TYPE_WIDENED = "type_widened"
    TYPE_NARROWED = "type_narrowed"
    UNION_MEMBER_ADDED = "union_member_added"
    UNION_MEMBER_REMOVED = "union_member_removed"
    ENUM_VALUE_ADDED = "enum_value_added"
    ENUM_VALUE_REMOVED = "enum_value_removed"
    CONST_CHANGED = "const_changed"
    CONSTRAINT_TIGHTENED = "constraint_tightened"
    CONSTRAINT_LOOSENED = "constraint_loosened"
    CONSTRAINT_CHANGED = "constraint_changed"
    UNRESOLVABLE = "unresolvable"


@dataclass(frozen=True)
class Problem:
    kind: ChangeKind
    pointer: str  # into the old schema, e.g. "#/$defs/OperationStatus"
    path: str  # into a record, e.g. "operation.status"; "" is the record itself
    message: str

    def __str__(self) -> str:
        return f"{self.pointer} ({self.path or '(record)'}): {self.kind}: {self.message}"


@dataclass(frozen=True)
class AllowedChange:
    """A reviewed exception: ``kind`` at ``pointer`` (into the old schema) is accepted, for ``reason``."""

    pointer: str
    kind: ChangeKind
    reason: str


def breaking_changes(
    old: JsonSchema, new: JsonSchema, *, role: Role, allowed: Iterable[AllowedChange] = ()
) -> list[Problem]:
    """Every change from ``old`` to ``new`` that a reader or writer of the topic could trip over,
    minus the ``allowed`` ones; empty when ``new`` is backward compatible."""
    diff = _Diff(old, new, role)
    diff.compare(old, new, "#", "#", "")
    waived = {(a.pointer, a.kind) for a in allowed}
    unique = dict.fromkeys(p for p in diff.problems if (p.pointer, p.kind) not in waived)
    return list(unique)


def pointer_child(pointer: str, *tokens: str | int) -> str:
    """``pointer`` extended by ``tokens``, escaped as RFC 6901 says ("~" -> "~0", "/" -> "~1")."""
    escaped = (str(t).replace("~", "~0").replace("/", "~1") for t in tokens)
    return "/".join([pointer, *escaped])


def resolve_pointer(root: JsonSchema, pointer: str) -> Any:
    """The node ``pointer`` ("#/a/b") designates in ``root``; raises ``KeyError`` if there is none."""
    if pointer != "#" and not pointer.startswith("#/"):
        raise KeyError(f"only local references are supported, not {pointer!r}")
    node: Any = root
    for raw in pointer[2:].split("/") if pointer != "#" else ():
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise KeyError(f"{pointer!r} does not resolve")
    return node


def json_type(node: JsonSchema) -> str:
    """The JSON type a single-typed node accepts, or "any" if it does not say."""
    declared = node.get("type")
    if isinstance(declared, str):
        return declared
    values = _values(node)
    if values:
        kinds = {_type_of(v) for v in values}
        if len(kinds) == 1:
            return kinds.pop()
    if "properties" in node or "additionalProperties" in node:
        return "object"
    if "items" in node or "prefixItems" in node:
        return "array"
    return "any"


def _type_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _values(node: JsonSchema) -> list[Any] | None:
    """The values a node is limited to by ``const`` or ``enum``, or None if it is not limited."""
    if "const" in node:
        return [node["const"]]
    enum = node.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _show(values: Iterable[Any]) -> str:
    return ", ".join(sorted(json.dumps(v) for v in values))


@dataclass
class _Branch:
    node: JsonSchema
    pointer: str
    label: str  # how a reader would name it: "null", "integer", "type=open_account"


@dataclass
class _Diff:
    old_root: JsonSchema
    new_root: JsonSchema
    role: Role
    problems: list[Problem] = field(default_factory=list)
    # (old pointer, new pointer) pairs already compared: shared $defs are reported once, and recursive
    # schemas terminate.
    seen: set[tuple[str, ...]] = field(default_factory=set)

    def report(self, kind: ChangeKind, pointer: str, path: str, message: str) -> None:
        self.problems.append(Problem(kind, pointer, path, message))

    def compare(self, old: Any, new: Any, optr: str, nptr: str, path: str) -> None:
        if (optr, nptr) in self.seen:
            return
        self.seen.add((optr, nptr))
        old_branches = self._branches(self.old_root, old, optr, path)
        new_branches = self._branches(self.new_root, new, nptr, path)
        if old_branches is None or new_branches is None:
            return
        if len(old_branches) == 1 and len(new_branches) == 1:
            o, n = old_branches[0], new_branches[0]
            self._compare_single(o.node, n.node, o.pointer, n.pointer, path)
            return
        self._compare_union(old_branches, new_branches, optr, path)

    def _resolve(self, root: JsonSchema, node: Any, pointer: str, path: str) -> tuple[JsonSchema, str] | None:
        """Follows ``$ref`` (and pydantic's older ``allOf: [{$ref}]``) to the node it stands for."""
        for _ in range(64):  # a chain of references longer than this is a cycle
            if not isinstance(node, dict):
                self.report(ChangeKind.UNRESOLVABLE, pointer, path, f"not a schema object: {node!r}")
                return None
            if "$ref" not in node and not (isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1):
                return node, pointer
            siblings = {k: v for k, v in node.items() if k not in {"$ref", "allOf"}}
            ref = node.get("$ref")
            try:
                target = resolve_pointer(root, ref) if ref is not None else node["allOf"][0]
            except KeyError as exc:
                self.report(ChangeKind.UNRESOLVABLE, pointer, path, str(exc))
                return None
            pointer = ref if ref is not None else pointer_child(pointer, "allOf", 0)
            node = {**target, **siblings} if isinstance(target, dict) else target
        self.report(ChangeKind.UNRESOLVABLE, pointer, path, "reference cycle")
        return None

    def _branches(self, root: JsonSchema, node: Any, pointer: str, path: str) -> list[_Branch] | None:
        """The alternatives a node accepts: its ``anyOf``/``oneOf`` members (flattened) or its ``type``
        list split by type, each labelled so that old and new alternatives can be paired."""
        resolved = self._resolve(root, node, pointer, path)
        if resolved is None:
            return None
        node, pointer = resolved
        for keyword in ("anyOf", "oneOf"):
            members = node.get(keyword)
            if isinstance(members, list):
                out: list[_Branch] = []
                for i, member in enumerate(members):
                    sub = self._branches(root, member, pointer_child(pointer, keyword, i), path)
                    if sub is None:
                        return None
                    out += sub
                return _labelled(root, out, node.get("discriminator"))
        declared = node.get("type")
        if isinstance(declared, list) and len(declared) > 1:
            return [_Branch({**node, "type": t}, pointer, str(t)) for t in declared]
        return [_Branch(node, pointer, json_type(node))]

    def _compare_union(self, old: list[_Branch], new: list[_Branch], optr: str, path: str) -> None:
        olds, news = {b.label: b for b in old}, {b.label: b for b in new}
        for label in olds.keys() & news.keys():
            o, n = olds[label], news[label]
            self.compare(o.node, n.node, o.pointer, n.pointer, _branch_path(path, label))
        only_old, only_new = olds.keys() - news.keys(), news.keys() - olds.keys()
        if len(only_old) == len(only_new) == 1 and only_old | only_new == {"integer", "number"}:
            # One numeric member swapped for the other: compared as one, which reports the widening.
            o, n = olds[only_old.pop()], news[only_new.pop()]
            self._compare_single(o.node, n.node, o.pointer, n.pointer, path)
            return
        for label in sorted(only_old):
            member = "=" in label
            self.report(
                ChangeKind.UNION_MEMBER_REMOVED if member else ChangeKind.TYPE_NARROWED,
                olds[label].pointer,
                path,
                f"{label} is no longer accepted; records written under the committed schema may be {label}",
            )
        for label in sorted(only_new):
            member = "=" in label
            self.report(
                ChangeKind.UNION_MEMBER_ADDED if member else ChangeKind.TYPE_WIDENED,
                optr,
                path,
                f"may now be {label}, which readers built on the committed schema do not expect",
            )

    def _compare_single(self, o: JsonSchema, n: JsonSchema, optr: str, nptr: str, path: str) -> None:
        # Resolved pointers: a $def reached from two places (``items[]`` and ``parent``) is compared once.
        if ("resolved", optr, nptr) in self.seen:
            return
        self.seen.add(("resolved", optr, nptr))
        old_type, new_type = json_type(o), json_type(n)
        numeric = {"integer", "number"}
        if old_type != new_type and {old_type, new_type} != numeric:
            if old_type == "any":
                kind, message = ChangeKind.TYPE_NARROWED, f"was any JSON value, now only {new_type}"
            elif new_type == "any":
                kind, message = ChangeKind.TYPE_WIDENED, f"was {old_type}, now any JSON value"
            else:
                kind, message = ChangeKind.TYPE_CHANGED, f"type changed from {old_type} to {new_type}"
            self.report(kind, optr, path, message)
            return
        if old_type != new_type:
            widened = old_type == "integer"
            self.report(
                ChangeKind.TYPE_WIDENED if widened else ChangeKind.TYPE_NARROWED,
                optr,
                path,
                f"{old_type} became {new_type}" + (": may now be fractional" if widened else ""),
            )
        self._compare_values(o, n, optr, path)
        self._compare_bounds(o, n, optr, path, integer=old_type == new_type == "integer")
        if old_type == "object":
            self._compare_object(o, n, optr, nptr, path)
        elif old_type == "array":
            self._compare_array(o, n, optr, nptr, path)

    def _compare_values(self, o: JsonSchema, n: JsonSchema, optr: str, path: str) -> None:
        old_values, new_values = _values(o), _values(n)
        if old_values is None and new_values is None:
            return
        if "const" in o or "const" in n:
            if old_values != new_values:
                was = _show(old_values) if old_values is not None else "unconstrained"
                now = _show(new_values) if new_values is not None else "unconstrained"
                self.report(ChangeKind.CONST_CHANGED, optr, path, f"was {was}, now {now}")
            return
        if old_values is None:
            assert new_values is not None
            self.report(ChangeKind.CONSTRAINT_TIGHTENED, optr, path, f"now limited to {_show(new_values)}")
            return
        if new_values is None:
            self.report(ChangeKind.CONSTRAINT_LOOSENED, optr, path, "no longer limited to an enum")
            return
        old_keys = {json.dumps(v, sort_keys=True) for v in old_values}
        new_keys = {json.dumps(v, sort_keys=True) for v in new_values}
        if added := new_keys - old_keys:
            self.report(
                ChangeKind.ENUM_VALUE_ADDED,
                optr,
                path,
                f"new values {', '.join(sorted(added))}: readers on the committed schema do not know them",
            )
        if removed := old_keys - new_keys:
            self.report(
                ChangeKind.ENUM_VALUE_REMOVED,
                optr,
                path,
                f"values {', '.join(sorted(removed))} removed: older records still carry them",
            )

    def _compare_bounds(self, o: JsonSchema, n: JsonSchema, optr: str, path: str, *, integer: bool) -> None:
        checks: list[tuple[str, float | None, float | None, bool]] = [
            (k, o.get(k), n.get(k), True) for k in _LOWER_BOUNDS
        ]
        checks += [(k, o.get(k), n.get(k), False) for k in _UPPER_BOUNDS]
        for keyword, lower in (("minimum", True), ("maximum", False)):
            was = _numeric_bound(o, lower=lower, integer=integer)
            checks.append((keyword, was, _numeric_bound(n, lower=lower, integer=integer), lower))
        for keyword, was, now, lower in checks:
            if was == now:
                continue
            # A missing bound is the loosest; a higher lower bound (or lower upper bound) is tighter.
            tighter = now is not None and (was is None or (now > was if lower else now < was))
            kind = ChangeKind.CONSTRAINT_TIGHTENED if tighter else ChangeKind.CONSTRAINT_LOOSENED
            self.report(kind, optr, path, f"{keyword} changed from {_bound(was)} to {_bound(now)}")
        for keyword in _EXACT_KEYWORDS:
            was, now = o.get(keyword), n.get(keyword)
            if was != now:
                kind = (
                    ChangeKind.CONSTRAINT_TIGHTENED
                    if was is None
                    else ChangeKind.CONSTRAINT_LOOSENED
                    if now is None
                    else ChangeKind.CONSTRAINT_CHANGED
                )
                self.report(kind, optr, path, f"{keyword} changed from {was!r} to {now!r}")
        if bool(o.get("uniqueItems")) != bool(n.get("uniqueItems")):
            kind = ChangeKind.CONSTRAINT_TIGHTENED if n.get("uniqueItems") else ChangeKind.CONSTRAINT_LOOSENED
            self.report(kind, optr, path, "uniqueItems changed")

    def _compare_object(self, o: JsonSchema, n: JsonSchema, optr: str, nptr: str, path: str) -> None:
        old_props: dict[str, Any] = o.get("properties", {})
        new_props: dict[str, Any] = n.get("properties", {})
        old_required, new_required = set(o.get("required", ())), set(n.get("required", ()))
        old_closed = o.get("additionalProperties") is False
        for name in old_props:
            child = f"{path}.{name}" if path else name
            pointer = pointer_child(optr, "properties", name)
            if name not in new_props:
                presence = "always present" if name in old_required else "optional"
                self.report(ChangeKind.PROPERTY_REMOVED, pointer, child, f"removed (was {presence})")
                continue
            if name in old_required and name not in new_required:
                self.report(
                    ChangeKind.REQUIRED_DROPPED, pointer, child, "was always present, may now be absent"
                )
            if name not in old_required and name in new_required:
                self.report(
                    ChangeKind.REQUIRED_ADDED, pointer, child, "now required; older records may lack it"
                )
            self.compare(
                old_props[name], new_props[name], pointer, pointer_child(nptr, "properties", name), child
            )
        for name in sorted(new_props.keys() - old_props.keys()):
            child = f"{path}.{name}" if path else name
            pointer = pointer_child(optr, "properties", name)
            if old_closed:
                self.report(
                    ChangeKind.PROPERTY_ADDED_TO_CLOSED_OBJECT,
                    pointer,
                    child,
                    "new property, but the committed schema forbids unknown properties: readers built on "
                    "it reject (or skip) every record that carries it",
                )
            elif name in new_required and self.role is Role.INPUT:
                self.report(
                    ChangeKind.REQUIRED_ADDED,
                    pointer,
                    child,
                    "new required property: old writers never send it",
                )
        if not old_closed and n.get("additionalProperties") is False and self.role is Role.INPUT:
            self.report(
                ChangeKind.ADDITIONAL_PROPERTIES_FORBIDDEN,
                optr,
                path,
                "unknown properties are now rejected; old writers may send some",
            )
        old_extra, new_extra = o.get("additionalProperties"), n.get("additionalProperties")
        if isinstance(old_extra, dict) and isinstance(new_extra, dict):
            self.compare(
                old_extra,
                new_extra,
                pointer_child(optr, "additionalProperties"),
                pointer_child(nptr, "additionalProperties"),
                f"{path}.*" if path else "*",
            )

    def _compare_array(self, o: JsonSchema, n: JsonSchema, optr: str, nptr: str, path: str) -> None:
        old_items, new_items = o.get("items"), n.get("items")
        if isinstance(old_items, dict) and isinstance(new_items, dict):
            self.compare(
                old_items, new_items, pointer_child(optr, "items"), pointer_child(nptr, "items"), f"{path}[]"
            )
        elif isinstance(old_items, dict) != isinstance(new_items, dict):
            kind = ChangeKind.TYPE_NARROWED if isinstance(new_items, dict) else ChangeKind.TYPE_WIDENED
            self.report(kind, optr, path, "the item schema was added or removed")
        old_prefix, new_prefix = o.get("prefixItems", []), n.get("prefixItems", [])
        if len(old_prefix) != len(new_prefix):
            self.report(
                ChangeKind.TYPE_CHANGED, optr, path, f"tuple of {len(old_prefix)} became {len(new_prefix)}"
            )
        for i, (old_item, new_item) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.compare(
                old_item,
                new_item,
                pointer_child(optr, "prefixItems", i),
                pointer_child(nptr, "prefixItems", i),
                f"{path}[{i}]",
            )


def _labelled(root: JsonSchema, branches: list[_Branch], discriminator: object) -> list[_Branch]:
    """Labels object members of a discriminated union by their tag, so they pair up by tag rather than by
    position; any other label used twice gets its position, which keeps labels unique."""
    prop = discriminator.get("propertyName") if isinstance(discriminator, dict) else None
    for branch in branches:
        if prop and branch.label == "object":
            tag = branch.node.get("properties", {}).get(prop)
            if isinstance(tag, dict) and "$ref" in tag:
                try:
                    tag = resolve_pointer(root, tag["$ref"])
                except KeyError:
                    tag = None
            values = _values(tag) if isinstance(tag, dict) else None
            if values is not None and len(values) == 1:
                branch.label = f"{prop}={values[0]}"
    counts: dict[str, int] = {}
    for branch in branches:
        counts[branch.label] = counts.get(branch.label, 0) + 1
    for i, branch in enumerate(branches):
        if counts[branch.label] > 1:
            branch.label = f"{branch.label}#{i}"
    return branches


def _branch_path(path: str, label: str) -> str:
    return f"{path}<{label}>" if "=" in label else path


def _numeric_bound(node: JsonSchema, *, lower: bool, integer: bool) -> float | None:
    """The tightest of ``minimum``/``exclusiveMinimum`` (or the maximum pair) as an inclusive bound.

    For integers, ``exclusiveMinimum: 0`` and ``minimum: 1`` accept the same values and compare equal; for
    other numbers an exclusive bound is nudged by the smallest float step so it compares tighter.
    """
    inclusive = node.get("minimum" if lower else "maximum")
    exclusive = node.get("exclusiveMinimum" if lower else "exclusiveMaximum")
    candidates: list[float] = []
    if isinstance(inclusive, int | float) and not isinstance(inclusive, bool):
        if integer:
            candidates.append(math.ceil(inclusive) if lower else math.floor(inclusive))
        else:
            candidates.append(inclusive)
    if isinstance(exclusive, int | float) and not isinstance(exclusive, bool):
        if integer:
            candidates.append(math.floor(exclusive) + 1 if lower else math.ceil(exclusive) - 1)
        else:
            candidates.append(math.nextafter(exclusive, math.inf if lower else -math.inf))
    if not candidates:
        return None
    return max(candidates) if lower else min(candidates)


def _bound(value: object) -> str:
    return "none" if value is None else str(value)
