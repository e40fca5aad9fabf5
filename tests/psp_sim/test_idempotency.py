"""Idempotency-Key parsing, fingerprints and log redaction: pure unit tests."""

from __future__ import annotations

import pytest

from payments.psp_sim.errors import IdempotencyKeyInvalid, IdempotencyKeyMissing
from payments.psp_sim.idempotency import fingerprint, parse_idempotency_key
from payments.psp_sim.models import ChargeRequest
from payments.psp_sim.redact import redact


@pytest.mark.parametrize(
    ("raw", "key"), [("abc", "abc"), ('"abc"', "abc"), ("  abc ", "abc"), ("x" * 255, "x" * 255)]
)
def test_keys_are_accepted_quoted_or_bare(raw: str, key: str) -> None:
    assert parse_idempotency_key(raw) == key


def test_missing_key() -> None:
    with pytest.raises(IdempotencyKeyMissing):
        parse_idempotency_key(None)


@pytest.mark.parametrize("raw", ["", '""', "x" * 256, "caf\u00e9"])
def test_invalid_keys(raw: str) -> None:
    with pytest.raises(IdempotencyKeyInvalid):
        parse_idempotency_key(raw)


def test_fingerprint_ignores_field_order_and_omitted_defaults() -> None:
    a = ChargeRequest.model_validate({"amount": 100, "currency": "EUR", "payment_method": "tok_ok"})
    b = ChargeRequest.model_validate(
        {"payment_method": "tok_ok", "metadata": {}, "currency": "EUR", "amount": 100}
    )
    c = ChargeRequest.model_validate({"amount": 101, "currency": "EUR", "payment_method": "tok_ok"})
    assert fingerprint("charge", a) == fingerprint("charge", b)
    assert fingerprint("charge", a) != fingerprint("charge", c)
    assert fingerprint("charge", a) != fingerprint("transfer", a)


def test_redact_never_shows_a_whole_value() -> None:
    assert redact("tok_insufficient_funds") == "tok_…(22)"
    assert redact("abc") == "***"
    assert redact(None) == "-"
