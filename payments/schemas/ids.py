"""Deterministic ids: operation and account ids derived from (principal, account id, Idempotency-Key).

A retry after Redis lost the key still produces the same id, and the processor dedupes it. The account is
part of an operation id's derivation because the dedupe happens on the account's partition: a key reused on
another account must give another id (a new operation there), never the same id on two partitions, where
neither processor could see the other's copy. Account ids are derived from (principal, key) alone: there
is no account yet.

The values are part of the contract (stored in Kafka, pinned by tests): never change the derivation.
"""

from __future__ import annotations

import hashlib

# 104 bits of sha256: collision odds stay negligible for far more operations than one principal makes.
ID_HEX_CHARS = 26


def derive_id(prefix: str, *parts: str) -> str:
    """``prefix`` + the first 26 hex characters of sha256 over the NUL-joined parts.

    NUL cannot occur in any part (user and account ids are identifiers, keys printable ASCII), so the tuple
    is encoded unambiguously: ("a", "b\\0c") and ("a\\0b", "c") cannot collide."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return prefix + digest[:ID_HEX_CHARS]


def derive_payment_id(principal: str, account_id: str, key: str) -> str:
    return derive_id("pay_", principal, account_id, key)


def derive_top_up_id(principal: str, account_id: str, key: str) -> str:
    return derive_id("top_", principal, account_id, key)


def derive_adjustment_id(principal: str, account_id: str, key: str) -> str:
    return derive_id("adj_", principal, account_id, key)


def derive_member_command_id(principal: str, account_id: str, key: str) -> str:
    """Membership changes sent with an Idempotency-Key: a retry re-publishes the same command id."""
    return derive_id("mem_", principal, account_id, key)


def derive_account_id(principal: str, key: str) -> str:
    return derive_id("acct_", principal, key)
