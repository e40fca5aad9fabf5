"""The id derivation is part of the contract: the values below are stored in Kafka and must never change."""

from __future__ import annotations

from payments.gateway import idempotency_keys
from payments.schemas.ids import (
    derive_account_id,
    derive_adjustment_id,
    derive_member_command_id,
    derive_payment_id,
    derive_top_up_id,
)


def test_pinned_values() -> None:
    assert derive_payment_id("alice", "acct_1", "k1") == "pay_29001177534071b745cbb8315b"
    assert derive_account_id("alice", "k1") == "acct_aa88580323c78c7b2ec8dc5b92"


def test_prefixes_and_scoping() -> None:
    ids = {
        derive_payment_id("alice", "acct_1", "k1"),
        derive_top_up_id("alice", "acct_1", "k1"),
        derive_adjustment_id("alice", "acct_1", "k1"),
        derive_member_command_id("alice", "acct_1", "k1"),
        derive_payment_id("alice", "acct_2", "k1"),  # another account: another operation
        derive_payment_id("bob", "acct_1", "k1"),
    }
    assert len(ids) == 6
    # The NUL separator keeps tuples apart that plain concatenation would merge.
    assert derive_payment_id("a", "bc", "k") != derive_payment_id("ab", "c", "k")


def test_the_gateway_uses_the_same_functions() -> None:
    assert idempotency_keys.derive_payment_id is derive_payment_id
    assert idempotency_keys.derive_account_id is derive_account_id
