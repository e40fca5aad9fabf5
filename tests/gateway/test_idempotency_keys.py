"""Pure idempotency helpers: header parsing, id derivation, fingerprints (property-tested). No I/O."""

from __future__ import annotations

import json
import random
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.gateway.errors import GatewayError
from payments.gateway.idempotency_keys import (
    derive_account_id,
    derive_adjustment_id,
    derive_member_command_id,
    derive_payment_id,
    derive_top_up_id,
    parse_idempotency_key,
    redis_key,
    request_fingerprint,
)
from payments.schemas.api import PaymentRequest
from payments.schemas.errors import ErrorCode
from payments.schemas.money import CURRENCY_EXPONENT

ROUTE = "/v1/accounts/{account_id}/payments"

identifiers = st.text(alphabet=string.ascii_letters + string.digits + "_.:-", min_size=1, max_size=20)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("abc-123", "abc-123"),
        ('"abc-123"', "abc-123"),
        ('  "8e03978e-40d5-43e8-bc93-6894a57f9324"  ', "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('"with space"', "with space"),
        ('"esc\\"aped\\\\"', 'esc"aped\\'),
        ("x" * 255, "x" * 255),
        ('"' + "y" * 255 + '"', "y" * 255),
    ],
)
def test_parses_quoted_and_bare_keys(raw: str, key: str) -> None:
    assert parse_idempotency_key(raw) == key


def test_missing_key() -> None:
    with pytest.raises(GatewayError) as info:
        parse_idempotency_key(None)
    assert info.value.code is ErrorCode.IDEMPOTENCY_KEY_MISSING


@pytest.mark.parametrize(
    "raw",
    ["", '""', "   ", "x" * 256, '"' + "x" * 256 + '"', '"unterminated', '"a"b', '"bad\\escape"', "caf\u00e9",
     "a b", 'a"b', "tab\tinside", '"ctl\x01"'],
)  # fmt: skip
def test_invalid_keys(raw: str) -> None:
    with pytest.raises(GatewayError) as info:
        parse_idempotency_key(raw)
    assert info.value.code is ErrorCode.IDEMPOTENCY_KEY_INVALID


def test_derived_ids_are_deterministic_prefixed_and_scoped() -> None:
    pid = derive_payment_id("alice", "acct_1", "k1")
    assert pid == derive_payment_id("alice", "acct_1", "k1")
    assert pid.startswith("pay_")
    assert len(pid) == 4 + 26
    assert all(c in string.hexdigits for c in pid[4:])
    assert pid != derive_payment_id("bob", "acct_1", "k1")  # scoped to the principal
    assert pid != derive_payment_id("alice", "acct_1", "k2")
    # ... and to the account: the same key on another account is another operation on another partition
    assert pid != derive_payment_id("alice", "acct_2", "k1")
    assert derive_adjustment_id("alice", "acct_1", "k1").startswith("adj_")
    assert derive_top_up_id("alice", "acct_1", "k1").startswith("top_")
    assert len(derive_top_up_id("alice", "acct_1", "k1")) == 4 + 26
    assert derive_member_command_id("alice", "acct_1", "k1").startswith("mem_")
    assert derive_account_id("alice", "k1").startswith("acct_")
    # same digest, the prefix says the kind
    assert derive_adjustment_id("alice", "acct_1", "k1")[4:] == pid[4:]
    assert derive_top_up_id("alice", "acct_1", "k1")[4:] == pid[4:]


@given(identifiers, identifiers, identifiers, identifiers, st.text(alphabet=string.printable, min_size=1))
def test_derivation_is_unambiguous(p1: str, a1: str, p2: str, a2: str, key: str) -> None:
    if (p1, a1) != (p2, a2):
        assert derive_payment_id(p1, a1, key) != derive_payment_id(p2, a2, key)


def test_redis_key_never_contains_the_key() -> None:
    rk = redis_key("alice", "secret-key-material")
    assert rk.startswith("idem:alice:")
    assert "secret" not in rk
    assert len(rk.split(":")[2]) == 64


# --- fingerprints ----------------------------------------------------------------------------------------

payments = st.fixed_dictionaries(
    {
        "amount": st.integers(min_value=1, max_value=10**15),
        "currency": st.sampled_from(sorted(CURRENCY_EXPONENT)),
        "payee": identifiers,
    },
    optional={"description": st.text(max_size=50)},
)


def _fingerprint(doc: dict[str, Any], account: str = "acct_1") -> str:
    return request_fingerprint("POST", ROUTE, account, PaymentRequest.model_validate(doc))


@given(payments, st.randoms(use_true_random=False))
def test_fingerprint_ignores_key_order_and_whitespace(doc: dict[str, Any], rnd: random.Random) -> None:
    items = list(doc.items())
    rnd.shuffle(items)
    reordered = json.loads(json.dumps(dict(items), indent=rnd.choice([None, 1, 4])))
    assert _fingerprint(reordered) == _fingerprint(doc)


@given(payments, st.data())
def test_fingerprint_changes_with_any_field(doc: dict[str, Any], data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(["amount", "currency", "payee", "description"]))
    changed = dict(doc)
    if field == "amount":
        changed["amount"] = doc["amount"] + 1 if doc["amount"] < 10**15 else doc["amount"] - 1
    elif field == "currency":
        changed["currency"] = data.draw(st.sampled_from(sorted(set(CURRENCY_EXPONENT) - {doc["currency"]})))
    elif field == "payee":
        changed["payee"] = doc["payee"] + "x"
    else:
        changed["description"] = (doc.get("description") or "") + "x"
    assert _fingerprint(changed) != _fingerprint(doc)


@given(payments)
def test_fingerprint_binds_route_method_and_account(doc: dict[str, Any]) -> None:
    body = PaymentRequest.model_validate(doc)
    base = request_fingerprint("POST", ROUTE, "acct_1", body)
    assert request_fingerprint("POST", ROUTE, "acct_2", body) != base
    assert request_fingerprint("PUT", ROUTE, "acct_1", body) != base
    assert request_fingerprint("POST", "/v1/accounts/{account_id}/adjustments", "acct_1", body) != base


def test_omitted_default_equals_explicit_default() -> None:
    doc = {"amount": 5, "currency": "EUR", "payee": "shop"}
    assert _fingerprint(doc) == _fingerprint({**doc, "description": None})
