"""Double-entry ledger transactions on ``payments.ledger``.

Each posting moves ``amount`` from ``debit`` to ``credit``, so every transaction balances by construction
and the sum over all ledger accounts stays zero. A customer account's posted balance is its credits minus
its debits (a liability of ours to the account holders).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FUNDING = "equity:funding"
PAYOUT_CLEARING = "clearing:psp-payouts"  # money the PSP paid out to payees for us
CHARGE_CLEARING = "clearing:psp-charges"  # money the PSP collected from cards for us
# PSP movements we cannot attribute to an account balance (a PSP success after we expired the operation):
# posted here so that every PSP success has exactly one ledger posting, and resolved by an operator.
SUSPENSE = "suspense"


class LedgerTxKind(StrEnum):
    """What a ledger transaction records; it also names the transaction (``tx_id = <op_id>:<kind>``).

    On the wire ``kind`` stays a plain string (:attr:`LedgerTransaction.kind`): a kind added later must not
    break readers built before it (docs/contracts.md counts an added enum value as breaking). Code produces
    and compares kinds through this enum; a StrEnum member serialises as the same string.
    """

    PAYMENT = "payment"  # a PSP transfer succeeded: the held amount leaves for the payout clearing account
    TOP_UP = "top_up"  # a PSP charge succeeded: the charge clearing account credits the customer
    ADJUSTMENT = "adjustment"  # an operator's credit or debit against equity:funding
    # A PSP success after the operation had ended otherwise: posted to SUSPENSE for an operator.
    LATE_PSP_SUCCESS = "late_psp_success"


# The kinds that record money the PSP moved: exactly one per succeeded PSP charge or transfer.
PSP_POSTING_KINDS = frozenset({LedgerTxKind.PAYMENT, LedgerTxKind.TOP_UP, LedgerTxKind.LATE_PSP_SUCCESS})


def customer_ledger_account(account_id: str) -> str:
    return f"customer:{account_id}"


class Posting(BaseModel):
    model_config = ConfigDict(frozen=True)

    debit: str
    credit: str
    amount: int = Field(gt=0)


class LedgerTransaction(BaseModel):
    model_config = ConfigDict(frozen=True)

    v: Literal[1] = 1
    tx_id: str
    account_id: str
    seq: int = Field(description="the account result seq published in the same Kafka transaction")
    op_id: str
    kind: str  # a LedgerTxKind value; a plain string on the wire (see LedgerTxKind)
    currency: str
    occurred_at: int
    postings: tuple[Posting, ...]

    def net_for(self, ledger_account: str) -> int:
        """Credits minus debits of one ledger account in this transaction."""
        return sum(p.amount for p in self.postings if p.credit == ledger_account) - sum(
            p.amount for p in self.postings if p.debit == ledger_account
        )
