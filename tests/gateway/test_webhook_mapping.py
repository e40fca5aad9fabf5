"""PSP webhook events → ``RecordPspOutcome`` (or why not). Pure."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from payments.gateway.webhooks import Ignored, outcome_command, parse_event, webhook_command_id
from payments.schemas.commands import RecordPspOutcome
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus


def event(type_: str = "transfer.succeeded", **data: Any) -> bytes:
    movement: dict[str, Any] = {
        "id": "tr_1",
        "kind": type_.split(".")[0],
        "status": type_.split(".")[1],
        "failure_code": None,
        "amount": 1250,
        "currency": "EUR",
        "idempotency_key": "pay_0123456789abcdef0123456789",
        "created_at": "2026-01-01T00:00:00Z",
        "metadata": {"account_id": "acct_1", "op_id": "pay_0123456789abcdef0123456789"},
        "payee": "shop",
        "some_future_field": {"nested": True},
        **data,
    }
    return orjson.dumps({"id": "evt_1", "type": type_, "timestamp": "2026-01-01T00:00:00Z", "data": movement})


def test_transfer_success() -> None:
    cmd = outcome_command(parse_event(event()), "msg_1", 7)
    assert cmd == RecordPspOutcome(
        command_id="whk.msg_1",
        account_id="acct_1",
        issued_at=7,
        op_id="pay_0123456789abcdef0123456789",
        status=PspOutcomeStatus.SUCCEEDED,
        source=PspOutcomeSource.WEBHOOK,
        psp_movement_id="tr_1",
        psp_failure_code=None,
        amount=1250,
    )


def test_charge_failure_keeps_the_psp_code() -> None:
    cmd = outcome_command(
        parse_event(event("charge.failed", failure_code="card_declined", idempotency_key="top_1")), "m", 1
    )
    assert isinstance(cmd, RecordPspOutcome)
    assert (cmd.op_id, cmd.status, cmd.psp_failure_code) == (
        "top_1",
        PspOutcomeStatus.FAILED,
        "card_declined",
    )
    long_code = outcome_command(parse_event(event("charge.failed", failure_code="x" * 500)), "m", 1)
    assert isinstance(long_code, RecordPspOutcome)
    assert long_code.psp_failure_code == "x" * 64


@pytest.mark.parametrize("type_", ["refund.succeeded", "refund.failed", "charge.pending", "account.updated"])
def test_other_types_are_ignored(type_: str) -> None:
    got = outcome_command(parse_event(event(type_)), "m", 1)
    assert isinstance(got, Ignored)
    assert got.reason == "type"


@pytest.mark.parametrize(
    "data",
    [
        {"metadata": {}},
        {"metadata": {"account_id": 42}},
        {"metadata": {"account_id": "not an id"}},
        {"idempotency_key": "someone else's key"},
    ],
)
def test_events_without_our_metadata_are_orphans(data: dict[str, Any]) -> None:
    got = outcome_command(parse_event(event(**data)), "m", 1)
    assert isinstance(got, Ignored)
    assert got.reason == "orphan"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", orjson.dumps({"id": "e", "type": "transfer.succeeded"})],
)
def test_unreadable_envelopes_raise(body: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_event(body)


@pytest.mark.parametrize(
    "data", [{"amount": 12.5}, {"amount": "1250"}, {"id": None}, {"idempotency_key": None}]
)
def test_malformed_movements_of_acted_on_types_raise(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        outcome_command(parse_event(event(**data)), "m", 1)


def test_command_ids_are_identifiers_and_distinct() -> None:
    assert webhook_command_id("msg_2b4c6d8e0f") == "whk.msg_2b4c6d8e0f"
    odd = [webhook_command_id(i) for i in ("a b", "a/b", "a_b", "x" * 500, "x" * 501)]
    assert len(set(odd)) == len(odd)
    assert odd[2] == "whk.a_b"
    for cid in odd:
        RecordPspOutcome(
            command_id=cid, account_id="a", issued_at=0, op_id="o", status=PspOutcomeStatus.FAILED,
            source=PspOutcomeSource.WEBHOOK,
        )  # fmt: skip
