"""A stand-in for the processor in the gateway's tests (the real one is not started here).

It consumes the commands the gateway published from the real broker and answers them with results and
ledger transactions of the shapes the processor publishes, written either straight into the read model
through the projector's own writer or, with ``results_topic``, to Kafka for a real projector to pick up.

It is deliberately independent of ``payments.processor``: the gateway's contract is the result and ledger
schemas, and these tests must not change meaning when the processor's internals do. The PSP leg is
scripted: ``psp`` says what the PSP answers to every payment and top-up at once ("succeeded", "failed")
or ``None`` to leave them ``reserved``/``processing`` until the test calls ``settle``.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Literal

import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from payments.readmodel.projector import ReadModelWriter
from payments.schemas.commands import (
    AddMember,
    AdjustBalance,
    AnyCommand,
    OpenAccount,
    RemoveMember,
    RequestPayment,
    RequestTopUp,
    decode_command,
)
from payments.schemas.errors import ErrorCode
from payments.schemas.ledger import (
    CHARGE_CLEARING,
    FUNDING,
    PAYOUT_CLEARING,
    LedgerTransaction,
    Posting,
    customer_ledger_account,
)
from payments.schemas.state import (
    AccountSnapshot,
    AccountStatus,
    Hold,
    HoldStatus,
    Operation,
    OperationKind,
    OperationStatus,
    ResultEvent,
    ResultType,
    StatusChange,
    result_type_for,
)
from payments.settings import KafkaSettings

PspAnswer = Literal["succeeded", "failed"] | None


class FakeProcessor:
    def __init__(
        self,
        kafka: KafkaSettings,
        redis_url: str,
        *,
        results_topic: bool = False,
        psp: PspAnswer = "succeeded",
    ) -> None:
        self._kafka = kafka
        self._writer = ReadModelWriter(redis.Redis.from_url(redis_url), operation_retention_s=None)
        self.psp = psp
        self.accounts: dict[str, AccountSnapshot] = {}
        self.ops: dict[str, Operation] = {}
        self.emitted: list[ResultEvent | LedgerTransaction] = []  # everything written, in order
        self._producer = Producer(kafka.client_config()) if results_topic else None
        self._consumer = Consumer(
            {
                **kafka.consumer_config(),
                "group.id": f"fake-processor-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        md = self._consumer.list_topics(kafka.topics.commands, timeout=10)
        parts = md.topics[kafka.topics.commands].partitions
        self._consumer.assign([TopicPartition(kafka.topics.commands, p, 0) for p in parts])

    def seed(self, snap: AccountSnapshot) -> None:
        self.accounts[snap.account_id] = snap

    # --- consuming ---------------------------------------------------------------------------------------

    def process_one(self, timeout_s: float = 20.0) -> list[ResultEvent]:
        """Consume one command and publish what it decides (possibly nothing); the results, in order."""
        msg = self._consumer.poll(timeout_s)
        assert msg is not None, "no command arrived"
        assert msg.error() is None, msg.error()
        cmd = decode_command(msg.value() or b"")
        results, ledger = self._decide(cmd)
        self._emit(results, ledger)
        return results

    async def process_one_async(self, timeout_s: float = 20.0) -> list[ResultEvent]:
        return await asyncio.to_thread(self.process_one, timeout_s)

    def settle(self, op_id: str, status: Literal["succeeded", "failed"], **extra: str) -> ResultEvent:
        """The PSP's late answer for ``op_id`` (as a ``RecordPspOutcome`` would produce it)."""
        results, ledger = self._psp_outcome(self.ops[op_id], status, f"psp.{op_id}", extra)
        self._emit(results, ledger)
        return results[-1]

    async def settle_async(self, op_id: str, status: Literal["succeeded", "failed"]) -> ResultEvent:
        return await asyncio.to_thread(self.settle, op_id, status)

    def close(self) -> None:
        self._consumer.close()

    def _emit(self, results: list[ResultEvent], ledger: list[LedgerTransaction]) -> None:
        self.emitted += [*results, *ledger]
        if self._producer is None:
            self._writer.apply_records([*results, *ledger])
            return
        for r in results:
            self._producer.produce(
                self._kafka.topics.results, key=r.account_id.encode(), value=r.model_dump_json().encode()
            )
        for tx in ledger:
            self._producer.produce(
                self._kafka.topics.ledger, key=tx.account_id.encode(), value=tx.model_dump_json().encode()
            )
        assert self._producer.flush(10) == 0

    # --- deciding (a sketch of the processor's contract, not its implementation) -------------------------

    def _account(self, account_id: str) -> AccountSnapshot:
        return self.accounts.get(account_id) or AccountSnapshot(
            account_id=account_id, status=AccountStatus.ABSENT
        )

    def _bump(self, acct: AccountSnapshot, **changes: object) -> AccountSnapshot:
        acct = acct.model_copy(update={**changes, "version": acct.version + 1})
        self.accounts[acct.account_id] = acct
        return acct

    def _result(
        self,
        acct: AccountSnapshot,
        command_id: str,
        issued_at: int,
        rtype: ResultType,
        op: Operation | None = None,
        code: ErrorCode | None = None,
    ) -> ResultEvent:
        if op is not None:
            self.ops[op.op_id] = op
        return ResultEvent(
            event_id=f"{acct.account_id}:{acct.version}",
            type=rtype,
            account_id=acct.account_id,
            seq=acct.version,
            occurred_at=issued_at,
            command_id=command_id,
            account=acct,
            operation=op,
            code=code,
        )

    def _decide(self, cmd: AnyCommand) -> tuple[list[ResultEvent], list[LedgerTransaction]]:
        acct = self._account(cmd.account_id)
        if isinstance(cmd, OpenAccount):
            if acct.status is AccountStatus.OPEN:
                return [], []
            acct = self._bump(
                acct,
                status=AccountStatus.OPEN,
                currency=cmd.currency,
                members=tuple(sorted(set(cmd.members))),
                overdraft_limit=cmd.overdraft_limit,
                opened_by_command=cmd.command_id,
            )
            return [self._result(acct, cmd.command_id, cmd.issued_at, ResultType.ACCOUNT_OPENED)], []
        if isinstance(cmd, AddMember | RemoveMember):
            present = cmd.user_id in acct.members
            if acct.status is not AccountStatus.OPEN or present == isinstance(cmd, AddMember):
                return [], []  # nothing changes: no result at all
            members = set(acct.members) ^ {cmd.user_id}
            acct = self._bump(acct, members=tuple(sorted(members)))
            rtype = ResultType.MEMBER_ADDED if isinstance(cmd, AddMember) else ResultType.MEMBER_REMOVED
            return [self._result(acct, cmd.command_id, cmd.issued_at, rtype)], []
        if isinstance(cmd, AdjustBalance | RequestPayment | RequestTopUp):
            return self._operation(acct, cmd)
        return [], []  # PSP outcomes and expiries: the tests drive those with settle()

    def _operation(
        self, acct: AccountSnapshot, cmd: AdjustBalance | RequestPayment | RequestTopUp
    ) -> tuple[list[ResultEvent], list[LedgerTransaction]]:
        if cmd.command_id in self.ops:
            return [], []
        kind = {
            AdjustBalance: OperationKind.ADJUSTMENT,
            RequestPayment: OperationKind.PAYMENT,
            RequestTopUp: OperationKind.TOP_UP,
        }[type(cmd)]
        code: ErrorCode | None = None
        if acct.status is not AccountStatus.OPEN:
            code = ErrorCode.ACCOUNT_NOT_FOUND
        elif cmd.currency != acct.currency:
            code = ErrorCode.CURRENCY_MISMATCH
        elif not isinstance(cmd, AdjustBalance) and cmd.principal not in acct.members:
            code = ErrorCode.NOT_A_MEMBER
        status = OperationStatus.REJECTED
        debit = -cmd.amount if isinstance(cmd, RequestPayment) else min(cmd.amount, 0)
        if code is None and acct.available + debit < -acct.overdraft_limit:
            status, code = OperationStatus.DECLINED, ErrorCode.INSUFFICIENT_FUNDS
        elif code is None:
            status = {
                OperationKind.ADJUSTMENT: OperationStatus.SUCCEEDED,
                OperationKind.PAYMENT: OperationStatus.RESERVED,
                OperationKind.TOP_UP: OperationStatus.PROCESSING,
            }[kind]
        changes: dict[str, object] = {}
        ledger: list[LedgerTransaction] = []
        if status is OperationStatus.RESERVED:
            changes["held"] = acct.held + cmd.amount
        if status is OperationStatus.SUCCEEDED:  # adjustments
            changes["posted"] = acct.posted + cmd.amount
        acct = self._bump(acct, **changes)
        op = Operation(
            op_id=cmd.command_id,
            kind=kind,
            account_id=acct.account_id,
            principal=cmd.principal,
            amount=cmd.amount,
            currency=cmd.currency,
            payee=cmd.payee if isinstance(cmd, RequestPayment) else None,
            description=cmd.description if isinstance(cmd, RequestPayment) else None,
            reason=cmd.reason if isinstance(cmd, AdjustBalance) else None,
            fingerprint=None if isinstance(cmd, AdjustBalance) else cmd.fingerprint,
            payment_method=cmd.payment_method if isinstance(cmd, RequestTopUp) else None,
            status=status,
            failure_code=code,
            hold=Hold(amount=cmd.amount) if status is OperationStatus.RESERVED else None,
            created_at=cmd.issued_at,
            updated_at=cmd.issued_at,
            history=(StatusChange(status=status, at=cmd.issued_at, seq=acct.version, code=code),),
        )
        if isinstance(cmd, AdjustBalance) and status is OperationStatus.SUCCEEDED:
            customer = customer_ledger_account(acct.account_id)
            debit_acct, credit_acct = (FUNDING, customer) if cmd.amount > 0 else (customer, FUNDING)
            posting = Posting(debit=debit_acct, credit=credit_acct, amount=abs(cmd.amount))
            ledger.append(self._tx(acct, op, "adjustment", posting))
        results = [self._result(acct, cmd.command_id, cmd.issued_at, result_type_for(op), op, code)]
        if self.psp is not None and status in (OperationStatus.RESERVED, OperationStatus.PROCESSING):
            more, psp_ledger = self._psp_outcome(op, self.psp, f"psp.{op.op_id}", {})
            results += more
            ledger += psp_ledger
        return results, ledger

    def _psp_outcome(
        self, op: Operation, status: Literal["succeeded", "failed"], command_id: str, extra: dict[str, str]
    ) -> tuple[list[ResultEvent], list[LedgerTransaction]]:
        acct = self.accounts[op.account_id]
        at = op.updated_at + 1
        ledger: list[LedgerTransaction] = []
        customer = customer_ledger_account(op.account_id)
        changes: dict[str, object] = {}
        if op.kind is OperationKind.PAYMENT:
            changes["held"] = acct.held - op.amount
        if status == "succeeded":
            if op.kind is OperationKind.PAYMENT:
                changes["posted"] = acct.posted - op.amount
            else:
                changes["posted"] = acct.posted + op.amount
        acct = self._bump(acct, **changes)
        code = None if status == "succeeded" else ErrorCode(extra.get("failure_code", "psp_declined"))
        new_status = OperationStatus.SUCCEEDED if status == "succeeded" else OperationStatus.FAILED
        hold = None
        if op.hold is not None:
            hold_status = HoldStatus.CAPTURED if status == "succeeded" else HoldStatus.RELEASED
            hold = op.hold.model_copy(update={"status": hold_status})
        op = op.model_copy(
            update={
                "status": new_status,
                "failure_code": code,
                "psp_failure_code": None
                if status == "succeeded"
                else extra.get("psp_failure_code", "card_declined"),
                "psp_movement_id": f"mv_{op.op_id}" if status == "succeeded" else None,
                "hold": hold,
                "updated_at": at,
                "history": (*op.history, StatusChange(status=new_status, at=at, seq=acct.version, code=code)),
            }
        )
        if status == "succeeded":
            if op.kind is OperationKind.PAYMENT:
                posting = Posting(debit=customer, credit=PAYOUT_CLEARING, amount=op.amount)
            else:
                posting = Posting(debit=CHARGE_CLEARING, credit=customer, amount=op.amount)
            ledger.append(self._tx(acct, op, op.kind.value, posting))
        return [self._result(acct, command_id, at, result_type_for(op), op, code)], ledger

    @staticmethod
    def _tx(acct: AccountSnapshot, op: Operation, kind: str, *postings: Posting) -> LedgerTransaction:
        return LedgerTransaction(
            tx_id=f"{op.op_id}:{kind}",
            account_id=acct.account_id,
            seq=acct.version,
            op_id=op.op_id,
            kind=kind,
            currency=op.currency,
            occurred_at=op.updated_at,
            postings=postings,
        )
