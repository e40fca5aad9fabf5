"""The committed message contracts (schemas/json/) match the models, stay backward compatible, and describe
what the processor really writes. Pure: no broker, no Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from payments.processor.decide import Decision, Policy, decide, operation_key
from payments.schemas import export
from payments.schemas.commands import (
    AddMember,
    AdjustBalance,
    AnyCommand,
    ExpireOperation,
    OpenAccount,
    RecordPspOutcome,
    RequestPayment,
    RequestTopUp,
)
from payments.schemas.compat import JsonSchema, Role, breaking_changes, resolve_pointer
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus
from payments.schemas.settlement import Discrepancy, DiscrepancyKind, SettlementRun
from payments.schemas.state import AccountSnapshot, Operation, ResultEvent
from payments.settings import TopicNames
from tests.schemas.minimal_validator import errors

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "json"
REGENERATE = "the committed JSON Schemas are out of date: run `make schemas` and commit schemas/json/"


def committed(name: str) -> JsonSchema:
    schema: JsonSchema = json.loads((COMMITTED / f"{name}.v1.json").read_text(encoding="utf-8"))
    return schema


def message(name: str) -> export.MessageType:
    (found,) = (m for m in export.MESSAGE_TYPES if m.name == name)
    return found


# (a) and (b): the files are current and the models have not drifted incompatibly from them.


def test_committed_schemas_equal_freshly_generated_ones() -> None:
    expected = {name: text for name, (_, text) in export.generate().items()}
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in sorted(COMMITTED.glob("*.json"))}
    assert on_disk.keys() == expected.keys(), REGENERATE
    for name, text in expected.items():
        assert on_disk[name] == text, f"{name}: {REGENERATE}"


@pytest.mark.parametrize("msg", export.MESSAGE_TYPES, ids=lambda m: m.name)
def test_current_models_are_backward_compatible_with_the_committed_schemas(msg: export.MessageType) -> None:
    problems = export.incompatibilities(msg, COMMITTED)
    assert problems == [], "\n".join(problems)


def test_export_check_passes_on_the_checkout() -> None:
    assert export.check(COMMITTED, COMMITTED) == []
    assert export.default_directory() == COMMITTED


# The registry: every topic another process reads has a contract, under the names the settings use.


def test_every_public_topic_has_a_contract() -> None:
    topics = TopicNames()
    private = {topics.state, topics.reconciler_state}
    assert {m.topic for m in export.MESSAGE_TYPES} == set(topics.all()) - private


def test_schema_metadata_and_determinism() -> None:
    for msg in export.MESSAGE_TYPES:
        schema = export.json_schema(msg)
        assert schema["$id"] == f"urn:shared-payments:schema:{msg.name}:v1"
        assert schema["$schema"] == export.JSON_SCHEMA_DIALECT
        assert (schema["x-topic"], schema["x-role"]) == (msg.topic, msg.role.value)
        assert schema["x-schema-mode"] == ("validation" if msg.role is Role.INPUT else "serialization")
        text = export.render(schema)
        assert text == export.render(export.json_schema(msg))
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _objects(schema: JsonSchema) -> list[tuple[str, JsonSchema]]:
    defs: dict[str, JsonSchema] = schema.get("$defs", {})
    found = [(f"#/$defs/{n}", d) for n, d in defs.items() if d.get("type") == "object"]
    return found + ([("#", schema)] if schema.get("type") == "object" else [])


@pytest.mark.parametrize(
    "msg", [m for m in export.MESSAGE_TYPES if m.role is Role.OUTPUT], ids=lambda m: m.name
)
def test_output_schemas_require_every_property_they_write(msg: export.MessageType) -> None:
    # model_dump_json() writes every field, null included; the contract promises exactly that.
    schema = committed(msg.name)
    for pointer, obj in _objects(schema):
        assert set(obj["required"]) == set(obj["properties"]), pointer


def test_command_members_require_their_discriminator() -> None:
    schema = committed("command")
    for member in schema["oneOf"]:
        assert "type" in resolve_pointer(schema, member["$ref"])["required"]


def test_results_contract_names_the_fields_consumers_rely_on() -> None:
    schema = committed("result-event")
    assert {"v", "event_id", "seq", "account_id", "type", "account", "operation"} <= set(schema["required"])
    operation = resolve_pointer(schema, "#/$defs/Operation")
    assert {"op_id", "status", "amount", "currency", "hold", "history", "created_at", "updated_at"} <= set(
        operation["required"]
    )


def test_the_committed_schema_catches_an_incompatible_model() -> None:
    # The compatibility test above is only as good as its baseline: dropping a result property must fail.
    current = export.json_schema(message("result-event"))
    del current["properties"]["seq"]
    current["required"].remove("seq")
    problems = breaking_changes(committed("result-event"), current, role=Role.OUTPUT)
    assert [(p.kind, p.path) for p in problems] == [("property_removed", "seq")]


# (d): what decide() really produces validates against the contracts, and every result carries the
# envelope and the operation's full state.

ACC = "acc_contract"
# Result types about one operation: they carry its full state (status, hold, history, PSP ids...).
OPERATION_RESULTS = ("payment_", "top_up_", "adjustment_", "psp_discrepancy", "idempotency_mismatch")
AT = 1_767_225_600_000


def _commands() -> list[AnyCommand]:
    common: dict[str, Any] = {"account_id": ACC, "currency": "EUR"}
    outcome: dict[str, Any] = {"account_id": ACC, "source": PspOutcomeSource.PSP_CALLER}
    return [
        OpenAccount(command_id="open", issued_at=AT, members=("alice",), principal="admin", **common),
        AdjustBalance(
            command_id="adj", issued_at=AT + 1, amount=10_000, reason="fund", principal="admin", **common
        ),
        AddMember(command_id="add_bob", account_id=ACC, issued_at=AT + 2, user_id="bob", principal="admin"),
        RequestPayment(
            command_id="pay_ok",
            issued_at=AT + 3,
            amount=1250,
            payee="shop",
            description="order 42",
            principal="alice",
            fingerprint="f" * 16,
            **common,
        ),
        RecordPspOutcome(
            command_id="out_ok",
            issued_at=AT + 4,
            op_id="pay_ok",
            status=PspOutcomeStatus.SUCCEEDED,
            psp_movement_id="tr_1",
            amount=1250,
            **outcome,
        ),
        RequestPayment(
            command_id="pay_big",
            issued_at=AT + 5,
            amount=1_000_000,
            payee="shop",
            principal="bob",
            fingerprint="g" * 16,
            **common,
        ),
        RequestPayment(
            command_id="pay_x",
            issued_at=AT + 6,
            amount=5,
            payee="shop",
            principal="eve",
            fingerprint="h" * 16,
            **common,
        ),
        RequestTopUp(
            command_id="top",
            issued_at=AT + 7,
            amount=500,
            payment_method="tok_ok",
            principal="bob",
            fingerprint="t" * 16,
            **common,
        ),
        RecordPspOutcome(
            command_id="out_top",
            issued_at=AT + 8,
            op_id="top",
            status=PspOutcomeStatus.UNKNOWN,
            **outcome,
        ),
        RequestPayment(
            command_id="pay_late",
            issued_at=AT + 9,
            amount=100,
            payee="shop",
            principal="alice",
            fingerprint="l" * 16,
            **common,
        ),
        ExpireOperation(command_id="exp", account_id=ACC, issued_at=AT + 10_000_000, op_id="pay_late"),
        # The PSP paid after all: posted to suspense and published as psp_discrepancy.
        RecordPspOutcome(
            command_id="out_late",
            issued_at=AT + 10_000_001,
            op_id="pay_late",
            status=PspOutcomeStatus.SUCCEEDED,
            psp_movement_id="tr_2",
            **outcome,
        ),
        # The same payment id with another payload: refused, recorded on the operation.
        RequestPayment(
            command_id="pay_ok",
            issued_at=AT + 10_000_002,
            amount=999,
            payee="shop",
            principal="alice",
            fingerprint="z" * 16,
            **common,
        ),
    ]


def _run(commands: list[AnyCommand]) -> list[Decision]:
    account: AccountSnapshot | None = None
    ops: dict[str, Operation] = {}
    decisions = []
    for cmd in commands:
        key = operation_key(cmd)
        decision = decide(account, ops.get(key) if key else None, cmd, Policy(operation_ttl_ms=1_000))
        account = decision.account or account
        if decision.operation is not None:
            ops[decision.operation.op_id] = decision.operation
        decisions.append(decision)
    return decisions


@pytest.fixture(scope="module")
def decisions() -> list[Decision]:
    return _run(_commands())


def _wire(model: BaseModel) -> Any:
    # Exactly the bytes the processor produces (transformer.py), read back as a consumer would.
    return json.loads(model.model_dump_json())


def test_processor_output_validates_against_the_committed_schemas(decisions: list[Decision]) -> None:
    records: list[tuple[str, BaseModel]] = [("result-event", r) for d in decisions for r in d.results]
    records += [("ledger-transaction", tx) for d in decisions for tx in d.ledger]
    records += [("psp-request", req) for d in decisions for req in d.psp_requests]
    assert {name for name, _ in records} == {"result-event", "ledger-transaction", "psp-request"}
    for name, record in records:
        assert errors(committed(name), _wire(record)) == [], (name, record)


def test_commands_validate_against_the_committed_schema() -> None:
    for cmd in _commands():
        assert errors(committed("command"), _wire(cmd)) == [], cmd


def test_settlement_records_validate_against_the_committed_schema() -> None:
    run = SettlementRun(
        run_id="r1",
        started_at=AT,
        finished_at=AT + 5,
        movements=3,
        matched=2,
        pending=1,
        new_discrepancies=1,
        known_discrepancies=0,
        clean=False,
    )
    found = Discrepancy(
        discrepancy_id="orphan_movement:tr_9",
        kind=DiscrepancyKind.ORPHAN_MOVEMENT,
        psp_movement_id="tr_9",
        psp_amount=100,
        currency="EUR",
        detail="no intent",
        run_id="r1",
        detected_at=AT + 5,
    )
    for record in (run, found):
        assert errors(committed("settlement-record"), _wire(record)) == []


def test_every_result_carries_event_id_seq_version_and_full_operation_state(
    decisions: list[Decision],
) -> None:
    results: list[ResultEvent] = [r for d in decisions for r in d.results]
    operation_props = set(resolve_pointer(committed("result-event"), "#/$defs/Operation")["properties"])
    seqs = []
    for result in results:
        wire = _wire(result)
        assert wire["v"] == 1
        assert wire["event_id"] == f"{ACC}:{wire['seq']}"
        assert wire["seq"] == wire["account"]["version"]
        seqs.append(wire["seq"])
        if result.type.value.startswith(OPERATION_RESULTS):
            assert wire["operation"] is not None, result.type
            assert set(wire["operation"]) == operation_props
            # A status change is the operation's latest history entry; a mismatch or a discrepancy is
            # recorded on the operation (counters) without changing its status.
            moved = not result.type.value.startswith(("psp_discrepancy", "idempotency_mismatch"))
            assert (wire["operation"]["history"][-1]["seq"] == wire["seq"]) is moved, result.type
    assert seqs == list(range(1, len(seqs) + 1)), "seq must be dense and start at 1"
    assert {r.type.value for r in results} >= {
        "account_opened",
        "adjustment_applied",
        "member_added",
        "payment_reserved",
        "payment_succeeded",
        "payment_declined",
        "payment_rejected",
        "payment_failed",
        "top_up_processing",
        "top_up_unknown",
        "psp_discrepancy",
        "idempotency_mismatch",
    }


def test_the_validator_rejects_what_the_contract_forbids(decisions: list[Decision]) -> None:
    # Guards the guard: a validator that accepted everything would make the tests above vacuous.
    schema = committed("result-event")
    good = _wire(decisions[3].results[0])
    assert errors(schema, good) == []
    for broken in (
        {k: v for k, v in good.items() if k != "seq"},
        {**good, "v": 2},
        {**good, "type": "payment_refunded"},
        {**good, "seq": "4"},
        {**good, "operation": {k: v for k, v in good["operation"].items() if k != "history"}},
    ):
        assert errors(schema, broken) != [], broken
