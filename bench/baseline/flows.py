"""The two ways the baseline pays, as most teams write them. Every HTTP answer is final (synchronous).

``pay_locked``: one transaction: claim the Idempotency-Key (unique constraint), ``SELECT ... FOR UPDATE``
the account, check funds, call the PSP, debit, record, store the answer, commit. Simple and correct, but the
row lock is held for the PSP's whole latency, so one account completes at most one payment per PSP call.

``pay_unlocked``: transaction 1 claims the key, locks the row and places a hold; the PSP is called with no
transaction open; transaction 2 captures or releases the hold and stores the answer. The lock is held for
two short transactions only. A crash between the two leaves a ``reserved`` payment with its hold, which a
reconciler would have to resolve (not built here: the benchmark's PSP has no faults).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import orjson

from bench.baseline.psp import PspAnswer, PspClient, PspResult
from payments.schemas.ledger import PAYOUT_CLEARING, customer_ledger_account

CLAIM_KEY = """
INSERT INTO idempotency_keys (principal, key, fingerprint) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING RETURNING 1
"""
STORED_KEY = (
    "SELECT fingerprint, status_code, response_body FROM idempotency_keys WHERE principal = $1 AND key = $2"
)
STORE_ANSWER = (
    "UPDATE idempotency_keys SET status_code = $3, response_body = $4 WHERE principal = $1 AND key = $2"
)
LOCK_ACCOUNT = """
SELECT a.currency, a.posted, a.held, a.overdraft_limit,
       EXISTS (SELECT 1 FROM account_members m WHERE m.account_id = a.id AND m.user_id = $2) AS member
FROM accounts a WHERE a.id = $1 FOR UPDATE
"""
INSERT_PAYMENT = """
INSERT INTO payments (id, account_id, principal, amount, currency, payee, description, status, psp_movement_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""
DEBIT = "UPDATE accounts SET posted = posted - $2, version = version + 1 WHERE id = $1"
HOLD = "UPDATE accounts SET held = held + $2, version = version + 1 WHERE id = $1"
CAPTURE = "UPDATE accounts SET posted = posted - $2, held = held - $2, version = version + 1 WHERE id = $1"
RELEASE = "UPDATE accounts SET held = held - $2, version = version + 1 WHERE id = $1"
SET_STATUS = "UPDATE payments SET status = $2, psp_movement_id = $3, updated_at = now() WHERE id = $1"
# The same ledger account names as ours (payments/schemas/ledger.py): debit the customer, credit the PSP's
# payout clearing account.
INSERT_LEDGER = "INSERT INTO ledger_entries (payment_id, debit, credit, amount) VALUES ($1, $2, $3, $4)"


if TYPE_CHECKING:  # the stubs' generic; at run time PoolConnectionProxy is not subscriptable
    from asyncpg.pool import PoolConnectionProxy

    Conn = PoolConnectionProxy[asyncpg.Record]


@dataclass(frozen=True)
class PaymentCommand:
    payment_id: str
    principal: str
    key: str
    fingerprint: str
    account_id: str
    amount: int
    currency: str
    payee: str
    description: str | None


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    replayed: bool = False


class Refused(Exception):
    """A 4xx before any side effect: the transaction (and with it the key's claim) is rolled back, so the
    answer is not stored, as docs/design.md §4 asks of validation failures."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


class PspUnknown(Exception):
    """The PSP gave no final answer inside the locked transaction: roll everything back, answer 503; the
    client's retry calls the PSP again with the same key, which the PSP dedupes."""


def problem(status: int, code: str, detail: str, **extensions: object) -> Answer:
    doc = {"type": f"https://payments.example/problems/{code}", "title": code.replace("_", " "),
           "status": status, "code": code, "detail": detail, **extensions}  # fmt: skip
    return Answer(status, orjson.dumps(doc))


def payment_body(cmd: PaymentCommand, status: str, movement_id: str | None) -> bytes:
    return orjson.dumps(
        {"id": cmd.payment_id, "account_id": cmd.account_id, "amount": cmd.amount, "currency": cmd.currency,
         "payee": cmd.payee, "description": cmd.description, "status": status, "psp_movement_id": movement_id}
    )  # fmt: skip


async def _replay(conn: Conn, cmd: PaymentCommand) -> Answer:
    row = await conn.fetchrow(STORED_KEY, cmd.principal, cmd.key)
    if row is None:  # the other claimant rolled back between our INSERT and this SELECT
        return problem(409, "idempotency_key_in_use", "retry")
    if row["fingerprint"] != cmd.fingerprint:
        return problem(422, "idempotency_key_reused", "this Idempotency-Key was used with another request")
    if row["status_code"] is None:
        return problem(409, "idempotency_key_in_use", "a request with this key is in progress")
    return Answer(int(row["status_code"]), bytes(row["response_body"]), replayed=True)


def _check(row: asyncpg.Record | None, cmd: PaymentCommand) -> bool:
    """Raises Refused for 404/403/422; True if the funds suffice."""
    if row is None:
        raise Refused(problem(404, "account_not_found", f"account {cmd.account_id} does not exist"))
    if not row["member"]:
        raise Refused(problem(403, "not_a_member", f"you are not a member of account {cmd.account_id}"))
    if row["currency"] != cmd.currency:
        raise Refused(problem(422, "currency_mismatch", f"the account is in {row['currency']}"))
    available: int = row["posted"] - row["held"] + row["overdraft_limit"]
    return available >= cmd.amount


async def _store(conn: Conn, cmd: PaymentCommand, answer: Answer) -> Answer:
    await conn.execute(STORE_ANSWER, cmd.principal, cmd.key, answer.status, answer.body)
    return answer


async def _decline(conn: Conn, cmd: PaymentCommand) -> Answer:
    await conn.execute(
        INSERT_PAYMENT, cmd.payment_id, cmd.account_id, cmd.principal, cmd.amount, cmd.currency, cmd.payee,
        cmd.description, "declined", None,
    )  # fmt: skip
    answer = problem(
        402, "insufficient_funds", "the payment was declined: insufficient_funds", payment_id=cmd.payment_id
    )
    return await _store(conn, cmd, answer)


async def _claim_and_lock(conn: Conn, cmd: PaymentCommand) -> Answer | None:
    """Both flows' first steps, inside their transaction: claim the key and lock the account row. An
    answer to send now (a replay, or a decline for funds), or None to go on; Refused for 404/403/422."""
    if not await conn.fetchval(CLAIM_KEY, cmd.principal, cmd.key, cmd.fingerprint):
        return await _replay(conn, cmd)
    if not _check(await conn.fetchrow(LOCK_ACCOUNT, cmd.account_id, cmd.principal), cmd):
        return await _decline(conn, cmd)
    return None


def _psp_failed(cmd: PaymentCommand, psp: PspAnswer) -> Answer:
    return problem(
        402, "psp_declined", f"the payment failed: psp_declined ({psp.failure_code})",
        payment_id=cmd.payment_id, psp_failure_code=psp.failure_code,
    )  # fmt: skip


async def pay_locked(
    pool: asyncpg.Pool, psp: PspClient, cmd: PaymentCommand, acquire_timeout_s: float
) -> Answer:
    async with pool.acquire(timeout=acquire_timeout_s) as conn:
        try:
            async with conn.transaction():
                if (early := await _claim_and_lock(conn, cmd)) is not None:
                    return early
                # The row lock is held across this call: every other payment of the account waits.
                answer = await psp.transfer(
                    cmd.payment_id, cmd.account_id, cmd.amount, cmd.currency, cmd.payee
                )
                if answer.result is PspResult.UNKNOWN:
                    raise PspUnknown(cmd.payment_id)
                status = "succeeded" if answer.result is PspResult.SUCCEEDED else "failed"
                await conn.execute(
                    INSERT_PAYMENT, cmd.payment_id, cmd.account_id, cmd.principal, cmd.amount, cmd.currency,
                    cmd.payee, cmd.description, status, answer.movement_id,
                )  # fmt: skip
                if answer.result is PspResult.SUCCEEDED:
                    await conn.execute(DEBIT, cmd.account_id, cmd.amount)
                    await conn.execute(
                        INSERT_LEDGER,
                        cmd.payment_id,
                        customer_ledger_account(cmd.account_id),
                        PAYOUT_CLEARING,
                        cmd.amount,
                    )
                    return await _store(conn, cmd, Answer(201, payment_body(cmd, status, answer.movement_id)))
                return await _store(conn, cmd, _psp_failed(cmd, answer))
        except Refused as refused:
            return refused.answer


async def pay_unlocked(
    pool: asyncpg.Pool, psp: PspClient, cmd: PaymentCommand, acquire_timeout_s: float
) -> Answer:
    async with pool.acquire(timeout=acquire_timeout_s) as conn:
        try:
            async with conn.transaction():
                if (early := await _claim_and_lock(conn, cmd)) is not None:
                    return early
                await conn.execute(HOLD, cmd.account_id, cmd.amount)
                await conn.execute(
                    INSERT_PAYMENT, cmd.payment_id, cmd.account_id, cmd.principal, cmd.amount, cmd.currency,
                    cmd.payee, cmd.description, "reserved", None,
                )  # fmt: skip
        except Refused as refused:
            return refused.answer
    # No transaction and no pooled connection held while the PSP works.
    answer = await psp.transfer(cmd.payment_id, cmd.account_id, cmd.amount, cmd.currency, cmd.payee)
    async with pool.acquire(timeout=acquire_timeout_s) as conn, conn.transaction():
        if answer.result is PspResult.SUCCEEDED:
            await conn.execute(CAPTURE, cmd.account_id, cmd.amount)
            await conn.execute(SET_STATUS, cmd.payment_id, "succeeded", answer.movement_id)
            await conn.execute(
                INSERT_LEDGER,
                cmd.payment_id,
                customer_ledger_account(cmd.account_id),
                PAYOUT_CLEARING,
                cmd.amount,
            )
            result = Answer(201, payment_body(cmd, "succeeded", answer.movement_id))
        elif answer.result is PspResult.FAILED:
            await conn.execute(RELEASE, cmd.account_id, cmd.amount)
            await conn.execute(SET_STATUS, cmd.payment_id, "failed", answer.movement_id)
            result = _psp_failed(cmd, answer)
        else:  # the hold stays until someone asks the PSP what happened
            await conn.execute(SET_STATUS, cmd.payment_id, "unknown", None)
            result = Answer(202, payment_body(cmd, "unknown", None))
        return await _store(conn, cmd, result)
