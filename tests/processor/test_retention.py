"""Which state the processor forgets, and when (bounded state). Pure: no clock, no Kafka."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from payments.processor.retention import RetentionPruner, expired, expired_keys
from payments.processor.transformer import ACCOUNT_PREFIX, OPERATION_PREFIX
from payments.schemas.state import (
    TERMINAL_STATUSES,
    AccountSnapshot,
    AccountStatus,
    Operation,
    OperationKind,
    OperationStatus,
)

DAY_MS = 24 * 3600 * 1000
NOW = 1_800_000_000_000


def op(op_id: str, status: OperationStatus, updated_at: int) -> Operation:
    return Operation(
        op_id=op_id,
        kind=OperationKind.PAYMENT,
        account_id="acc",
        principal="alice",
        amount=100,
        currency="EUR",
        status=status,
        created_at=updated_at - 5,
        updated_at=updated_at,
    )


def test_an_ended_operation_is_kept_until_its_retention_has_passed_since_its_last_change() -> None:
    ended = op("p", OperationStatus.SUCCEEDED, NOW - DAY_MS)
    assert not expired(ended, NOW, DAY_MS + 1)
    assert expired(ended, NOW, DAY_MS)  # exactly the retention: gone
    assert expired(ended, NOW, DAY_MS - 1)


@given(status=st.sampled_from(list(OperationStatus)), age_ms=st.integers(0, 400 * DAY_MS))
def test_only_terminal_operations_ever_expire(status: OperationStatus, age_ms: int) -> None:
    # An operation that can still change (reserved, processing, unknown) is never forgotten, however old:
    # its hold and the reconciler's work depend on it.
    assert expired(op("p", status, NOW - age_ms), NOW, DAY_MS) == (
        status in TERMINAL_STATUSES and age_ms >= DAY_MS
    )


def test_accounts_are_never_pruned_and_only_operation_keys_are_named() -> None:
    account = AccountSnapshot(account_id="acc", status=AccountStatus.OPEN, currency="EUR", version=9)
    state: dict[str, object] = {
        ACCOUNT_PREFIX + "acc": account,
        OPERATION_PREFIX + "old-ok": op("old-ok", OperationStatus.SUCCEEDED, NOW - 40 * DAY_MS),
        OPERATION_PREFIX + "old-declined": op("old-declined", OperationStatus.DECLINED, NOW - 36 * DAY_MS),
        OPERATION_PREFIX + "old-unknown": op("old-unknown", OperationStatus.UNKNOWN, NOW - 90 * DAY_MS),
        OPERATION_PREFIX + "recent-ok": op("recent-ok", OperationStatus.SUCCEEDED, NOW - DAY_MS),
    }
    pruner = RetentionPruner(35 * DAY_MS)
    assert sorted(pruner(state, NOW)) == [OPERATION_PREFIX + "old-declined", OPERATION_PREFIX + "old-ok"]
    assert len(state) == 5  # the pruner only names keys; the runtime deletes them


def test_expired_keys_is_lazy_so_the_runtime_can_take_a_bounded_number() -> None:
    state: dict[str, object] = {
        f"{OPERATION_PREFIX}{i}": op(str(i), OperationStatus.FAILED, NOW - 100 * DAY_MS) for i in range(1000)
    }
    keys = expired_keys(state, NOW, DAY_MS)
    assert [next(keys) for _ in range(3)] == [f"{OPERATION_PREFIX}{i}" for i in range(3)]
