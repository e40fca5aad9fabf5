"""``payments schemas write|check``: the JSON Schema of every Kafka message type, committed under
``schemas/json/`` as ``<name>.v<version>.json``.

Which schema is the contract depends on who reads what:

- Topics only we write (results, ledger, PSP requests, discrepancies) are read by consumers that see what
  we *serialize*, so their schema is pydantic's serialization-mode schema. Every producer writes them with
  ``model_dump_json()`` and no ``exclude_*`` option, so every field is on the wire, ``null`` included; the
  schema says so by listing every property in ``required`` (pydantic's default would leave out fields that
  have a default, ``v`` among them, although they are always written).
- ``payments.commands`` is written by the gateway, the psp-caller, the reconciler and other teams' tools and
  read by the processor, which *validates* it: the validation-mode schema (what is accepted) is the contract.

``write`` refuses to replace a committed schema with an incompatible one (see ``compat.py``), so the
committed files only ever move forward compatibly; ``check`` (CI, ``tests/schemas``) fails when a file is
missing, stale or incompatible. An intended breaking change goes through :data:`ALLOWED_CHANGES`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode
from pydantic_core import core_schema

from payments.schemas.commands import Command
from payments.schemas.compat import AllowedChange, JsonSchema, Role, breaking_changes, resolve_pointer
from payments.schemas.ledger import LedgerTransaction
from payments.schemas.psp import PspRequest
from payments.schemas.settlement import SettlementRecord
from payments.schemas.state import ResultEvent

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_FILE_NAME = re.compile(r"^(?P<name>[a-z0-9-]+)\.v(?P<version>[0-9]+)\.json$")


@dataclass(frozen=True)
class MessageType:
    name: str
    topic: str  # the default topic name (payments.settings.TopicNames); deployments may prefix it
    adapter: TypeAdapter[Any]
    role: Role
    description: str


# Every message type another process reads. The state changelogs (payments.processor-state,
# payments.reconciler-state) are private to the service that writes them and are not contracts.
MESSAGE_TYPES: tuple[MessageType, ...] = (
    MessageType(
        "command",
        "payments.commands",
        TypeAdapter(Command),
        Role.INPUT,
        "A command on an account's ordered input log (key = account id), discriminated by `type`.",
    ),
    MessageType(
        "result-event",
        "payments.results",
        TypeAdapter(ResultEvent),
        Role.OUTPUT,
        "One state change of an account (key = account id), with the account snapshot and the operation's "
        "full state; per-account `seq` is dense and `event_id` is `<account_id>:<seq>`.",
    ),
    MessageType(
        "ledger-transaction",
        "payments.ledger",
        TypeAdapter(LedgerTransaction),
        Role.OUTPUT,
        "One balanced double-entry transaction (key = account id).",
    ),
    MessageType(
        "psp-request",
        "payments.psp-requests",
        TypeAdapter(PspRequest),
        Role.OUTPUT,
        "A money movement for the psp-caller (key = account id); `op_id` is the PSP idempotency key.",
    ),
    MessageType(
        "settlement-record",
        "payments.discrepancies",
        TypeAdapter(SettlementRecord),
        Role.OUTPUT,
        "A settlement discrepancy or settlement run (compacted, key = discrepancy id or `run:<run_id>`).",
    ),
)

# Reviewed exceptions to the compatibility rules, by message name. An entry names the change as `check`
# reports it (pointer into the committed schema and kind) and says why it is safe, e.g.
#   "result-event": (AllowedChange("#/$defs/ResultType", ChangeKind.ENUM_VALUE_ADDED,
#                    "payment_refunded: consumers X and Y upgraded on 2026-03-01"),),
# Remove entries once the schemas that contain the change are committed.
ALLOWED_CHANGES: Mapping[str, tuple[AllowedChange, ...]] = MappingProxyType({})


class _WireSchema(GenerateJsonSchema):
    """Serialization mode lists every written property as required (see the module docstring)."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return field.get("serialization_exclude_if") is None
        return super().field_is_required(field, total)


def json_schema(message: MessageType) -> JsonSchema:
    """The contract of ``message``: pure, and the same on every run."""
    mode: JsonSchemaMode = "validation" if message.role is Role.INPUT else "serialization"
    schema = message.adapter.json_schema(mode=mode, schema_generator=_WireSchema)
    _require_discriminators(schema)
    version = _version(schema)
    meta: JsonSchema = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:shared-payments:schema:{message.name}:v{version}",
        "title": schema.get("title") or _title(message.name),
        "description": message.description,
        "x-topic": message.topic,
        "x-role": message.role.value,
        "x-schema-mode": mode,
    }
    return {**schema, **meta}


def render(schema: JsonSchema) -> str:
    """Deterministic text: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def file_name(message: MessageType, schema: JsonSchema) -> str:
    return f"{message.name}.v{_version(schema)}.json"


def generate() -> dict[str, tuple[MessageType, str]]:
    """File name -> (message type, file content) for every message type."""
    out: dict[str, tuple[MessageType, str]] = {}
    for message in MESSAGE_TYPES:
        schema = json_schema(message)
        out[file_name(message, schema)] = (message, render(schema))
    return out


def incompatibilities(message: MessageType, baseline_dir: Path) -> list[str]:
    """Why the current ``message`` schema may not replace the newest committed one in ``baseline_dir``;
    empty when there is none (a new message type) or the change is compatible or allowed."""
    committed = _latest(baseline_dir, message.name)
    if committed is None:
        return []
    try:
        old = json.loads(committed.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{committed}: unreadable ({exc})"]
    allowed = ALLOWED_CHANGES.get(message.name, ())
    found = breaking_changes(old, json_schema(message), role=message.role, allowed=allowed)
    return [f"{committed.name}: {problem}" for problem in found]


def check(directory: Path, baseline_dir: Path) -> list[str]:
    """Problems with the committed schemas in ``directory``: missing, stale, not generated by any message
    type, or incompatible with the ones in ``baseline_dir``."""
    problems: list[str] = []
    expected = generate()
    for name, (message, text) in expected.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{path}: missing; run `make schemas`")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: stale (the models changed); run `make schemas` and commit the result")
        problems += incompatibilities(message, baseline_dir)
    problems += [f"{p}: no message type generates it; delete it" for p in _orphans(directory, expected)]
    return problems


def write(directory: Path) -> list[str]:
    """Writes every schema into ``directory`` unless one is incompatible with the file it would replace
    (then it writes nothing and returns why); also returns the files there that no message type generates."""
    expected = generate()
    problems = [p for message, _ in expected.values() for p in incompatibilities(message, directory)]
    if problems:
        return problems
    directory.mkdir(parents=True, exist_ok=True)
    for name, (_, text) in expected.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return [f"{p}: no message type generates it; delete it" for p in _orphans(directory, expected)]


def default_directory() -> Path | None:
    """``schemas/json`` of the source checkout this package runs from, if it runs from one."""
    root = Path(__file__).resolve().parents[2]
    return root / "schemas" / "json" if (root / "pyproject.toml").is_file() else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="payments schemas", description="write or check the JSON Schemas of every Kafka message"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    for action, help_ in (("write", "regenerate the files"), ("check", "exit 1 if anything is off")):
        cmd = sub.add_parser(action, help=help_)
        cmd.add_argument("--dir", type=Path, default=None, help="default: schemas/json of the checkout")
    sub.choices["check"].add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="committed schemas to stay compatible with, e.g. extracted from main (default: --dir)",
    )
    args = parser.parse_args(argv)
    directory: Path | None = args.dir or default_directory()
    if directory is None:
        parser.error("not running from a source checkout: pass --dir")
    problems = write(directory) if args.action == "write" else check(directory, args.baseline or directory)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(_HELP_ON_FAILURE, file=sys.stderr)
        return 1
    print(f"{len(MESSAGE_TYPES)} message schemas in {directory} are current and compatible")
    return 0


_HELP_ON_FAILURE = (
    "Stale or missing: run `make schemas`. Incompatible: keep the change backward compatible (add optional "
    "fields; see docs/contracts.md), or coordinate it with the topic's readers and list it in "
    "ALLOWED_CHANGES in payments/schemas/export.py."
)


def _require_discriminators(schema: JsonSchema) -> None:
    """A discriminated union cannot pick a member without its tag, even where the member's tag field has
    a default; pydantic's validation schema omits that, so the tag is added to each member's ``required``."""
    prop = schema.get("discriminator", {}).get("propertyName")
    for member in schema.get("oneOf", ()) if prop else ():
        target = resolve_pointer(schema, member["$ref"]) if "$ref" in member else member
        required: list[str] = target.setdefault("required", [])
        if prop not in required:
            required.insert(0, prop)


def _version(schema: JsonSchema) -> int:
    """The envelope version ``v`` every member of the message pins with a ``const``."""
    members = [resolve_pointer(schema, m["$ref"]) if "$ref" in m else m for m in schema.get("oneOf", ())]
    versions = {m.get("properties", {}).get("v", {}).get("const") for m in members or [schema]}
    if len(versions) != 1 or not isinstance(version := versions.pop(), int):
        raise ValueError(f"every member must pin one integer version `v`, found {versions}")
    return version


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def _latest(directory: Path, name: str) -> Path | None:
    versions = [
        (int(m["version"]), path)
        for path in directory.glob(f"{name}.v*.json")
        if (m := _FILE_NAME.match(path.name)) and m["name"] == name
    ]
    return max(versions)[1] if versions else None


def _orphans(directory: Path, expected: Mapping[str, object]) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.json") if p.name not in expected)
