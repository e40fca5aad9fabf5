"""Wires the pure ``decide()`` to the exactly-once runtime: state keys, codec and output records."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client import Counter
from pydantic import ValidationError

from payments.processor.decide import DEFAULT_POLICY, Policy, decide, operation_key
from payments.schemas.commands import decode_command
from payments.schemas.state import AccountSnapshot, Operation
from payments.settings import TopicNames
from payments.streaming.store import StateAccess
from payments.streaming.types import InputRecord, Output

log = logging.getLogger(__name__)

COMMANDS = Counter(
    "processor_commands_total", "Commands decided, by command type and result", ["type", "result"]
)
POISON = Counter("processor_poison_records_total", "Input records that could not be decoded and were skipped")

ACCOUNT_PREFIX = "a:"
OPERATION_PREFIX = "o:"


class StateCodec:
    """Changelog encoding: one record per account (``a:<id>``) and per operation (``o:<id>``)."""

    def encode(self, key: str, value: object) -> bytes:
        if not isinstance(value, AccountSnapshot | Operation):
            raise TypeError(f"unexpected state value for {key}: {type(value).__name__}")
        return value.model_dump_json().encode()

    def decode(self, key: str, raw: bytes) -> object:
        if key.startswith(ACCOUNT_PREFIX):
            return AccountSnapshot.model_validate_json(raw)
        return Operation.model_validate_json(raw)


class PaymentsTransformer:
    def __init__(self, topics: TopicNames, policy: Policy = DEFAULT_POLICY) -> None:
        self._topics = topics
        self._policy = policy
        # The labelled children of COMMANDS, by (command type, result). ``Counter.labels()`` validates and
        # looks its arguments up under a lock on every call: profiled at a fifth of the processor's CPU per
        # command (bench/README.md), for a handful of distinct label pairs.
        self._counted: dict[tuple[str, str], Counter] = {}

    def _count(self, command_type: str, result: str) -> None:
        child = self._counted.get((command_type, result))
        if child is None:
            child = self._counted[(command_type, result)] = COMMANDS.labels(command_type, result)
        child.inc()

    def __call__(self, state: StateAccess, record: InputRecord) -> Sequence[Output]:
        if record.value is None:
            POISON.inc()
            log.error(
                "skipping record without value at partition=%d offset=%d", record.partition, record.offset
            )
            return ()
        try:
            cmd = decode_command(record.value)
        except ValidationError as exc:
            # Skipped, not retried: a record that cannot be decoded now never will be. Counted and logged
            # (without the payload, which may carry personal data) so an operator can inspect the offset.
            POISON.inc()
            log.error(
                "skipping undecodable command at partition=%d offset=%d: %d errors",
                record.partition,
                record.offset,
                exc.error_count(),
            )
            return ()
        if record.key != cmd.account_id.encode():
            # A command keyed by anything but its account would be decided by the wrong single writer.
            POISON.inc()
            log.error(
                "skipping command keyed off its account at partition=%d offset=%d",
                record.partition,
                record.offset,
            )
            return ()
        account_key = ACCOUNT_PREFIX + cmd.account_id
        op_id = operation_key(cmd)
        op_key = OPERATION_PREFIX + op_id if op_id else None
        account = state.get(account_key)
        operation = state.get(op_key) if op_key else None
        assert account is None or isinstance(account, AccountSnapshot)
        assert operation is None or isinstance(operation, Operation)
        decision = decide(account, operation, cmd, self._policy)
        if decision.is_noop:
            self._count(cmd.type, "duplicate")
            return ()
        if decision.account is not None:
            state.put(account_key, decision.account)
        if decision.operation is not None and op_key is not None:
            state.put(op_key, decision.operation)
        key = cmd.account_id.encode()
        outputs = [Output(self._topics.results, key, r.model_dump_json().encode()) for r in decision.results]
        outputs += [Output(self._topics.ledger, key, tx.model_dump_json().encode()) for tx in decision.ledger]
        outputs += [
            Output(self._topics.psp_requests, key, req.model_dump_json().encode())
            for req in decision.psp_requests
        ]
        for r in decision.results:
            self._count(cmd.type, r.type.value)
        return outputs
