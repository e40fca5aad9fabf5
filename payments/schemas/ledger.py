"""Double-entry ledger transactions on ``payments.ledger``.

Each posting moves ``amount`` from ``debit`` to ``credit``, so every transaction balances by construction
and the sum over all ledger accounts stays zero. A customer account's posted balance is its credits minus
its debits (a liability of ours to the account holders).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FUNDING = "equity:funding"
PAYOUT_CLEARING = "clearing:psp-payouts"  # money the PSP paid out to payees for us
CHARGE_CLEARING = "clearing:psp-charges"  # money the PSP collected from cards for us
# PSP movements we cannot attribute to an account balance (a PSP success after we expired the operation):
# posted here so that every PSP success has exactly one ledger posting, and resolved by an operator.
SUSPENSE = "suspense"


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
    kind: str
    currency: str
    occurred_at: int
    postings: tuple[Posting, ...]

    def net_for(self, ledger_account: str) -> int:
        """Credits minus debits of one ledger account in this transaction."""
        return sum(p.amount for p in self.postings if p.credit == ledger_account) - sum(
            p.amount for p in self.postings if p.debit == ledger_account
        )
