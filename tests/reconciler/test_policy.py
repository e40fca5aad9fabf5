"""The reconciler's decision rules: what a PSP lookup answer leads to, and when to look (again)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.reconciler.policy import (
    AskLater,
    Expire,
    Lookup,
    LookupKind,
    ReconcilePolicy,
    RecordOutcome,
    Redrive,
    first_check_at,
    next_check_at,
    resolve,
)
from payments.reconciler.tracking import TrackedOp
from payments.schemas.psp import PspOutcomeStatus
from payments.schemas.state import OperationKind, OperationStatus
from tests.reconciler.support import tracked

POLICY = ReconcilePolicy()  # defaults: check 30 s, unknown 1 s, backoff 1 s..60 s, grace 30 s
DEADLINE = 600_000
EXPIRY = DEADLINE + POLICY.expire_grace_ms
OPEN_STATUSES = (OperationStatus.RESERVED, OperationStatus.PROCESSING, OperationStatus.UNKNOWN)
NOT_FOUND = Lookup(LookupKind.NOT_FOUND)
UNAVAILABLE = Lookup(LookupKind.UNAVAILABLE, detail="503")


# ---- resolve ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_a_found_success_is_recorded_with_the_psps_movement(status: OperationStatus) -> None:
    lookup = Lookup(LookupKind.FOUND, succeeded=True, movement_id="mv_1", amount=1250)
    # Even long past expiry: what the PSP did always wins over "no record".
    for now in (0, DEADLINE, EXPIRY + 10**9):
        action = resolve(tracked(status=status, deadline_at=DEADLINE), lookup, now, POLICY)
        assert action == RecordOutcome(PspOutcomeStatus.SUCCEEDED, "mv_1", 1250, None)


def test_a_found_failure_is_recorded_with_its_failure_code() -> None:
    lookup = Lookup(
        LookupKind.FOUND, succeeded=False, movement_id="mv_2", amount=700, failure_code="card_declined"
    )
    action = resolve(tracked(status=OperationStatus.UNKNOWN), lookup, EXPIRY + 1, POLICY)
    assert action == RecordOutcome(PspOutcomeStatus.FAILED, "mv_2", 700, "card_declined")


def test_a_found_movement_without_a_readable_amount_is_recorded_without_one() -> None:
    lookup = Lookup(LookupKind.FOUND, succeeded=True, movement_id="mv_3", amount=None)
    action = resolve(tracked(), lookup, 0, POLICY)
    assert action == RecordOutcome(PspOutcomeStatus.SUCCEEDED, "mv_3", None, None)


@pytest.mark.parametrize("now", [0, DEADLINE - 1])
def test_an_unknown_op_with_no_psp_record_before_its_deadline_is_redriven(now: int) -> None:
    assert (
        resolve(tracked(status=OperationStatus.UNKNOWN, deadline_at=DEADLINE), NOT_FOUND, now, POLICY)
        == Redrive()
    )


@pytest.mark.parametrize("now", [DEADLINE, EXPIRY - 1])
def test_between_deadline_and_expiry_an_unknown_op_is_only_looked_at_again(now: int) -> None:
    # The psp-caller starts no attempt past the deadline: a re-drive then could only cost a request.
    assert (
        resolve(tracked(status=OperationStatus.UNKNOWN, deadline_at=DEADLINE), NOT_FOUND, now, POLICY)
        == AskLater()
    )


@pytest.mark.parametrize("status", [OperationStatus.RESERVED, OperationStatus.PROCESSING])
@pytest.mark.parametrize("now", [0, DEADLINE, EXPIRY - 1])
def test_an_op_the_psp_caller_still_owns_is_only_looked_at_again(status: OperationStatus, now: int) -> None:
    assert resolve(tracked(status=status, deadline_at=DEADLINE), NOT_FOUND, now, POLICY) == AskLater()


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_no_psp_record_expires_exactly_from_deadline_plus_grace(status: OperationStatus) -> None:
    op = tracked(status=status, deadline_at=DEADLINE)
    assert not isinstance(resolve(op, NOT_FOUND, EXPIRY - 1, POLICY), Expire)
    assert resolve(op, NOT_FOUND, EXPIRY, POLICY) == Expire()
    assert resolve(op, NOT_FOUND, EXPIRY + 86_400_000, POLICY) == Expire()


def test_the_grace_is_the_policys() -> None:
    policy = ReconcilePolicy(expire_grace_ms=5_000)
    op = tracked(status=OperationStatus.UNKNOWN, deadline_at=DEADLINE)
    assert resolve(op, NOT_FOUND, DEADLINE + 4_999, policy) == AskLater()
    assert resolve(op, NOT_FOUND, DEADLINE + 5_000, policy) == Expire()


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_an_op_without_deadline_never_expires(status: OperationStatus) -> None:
    op = tracked(status=status, deadline_at=None)
    action = resolve(op, NOT_FOUND, 10**15, POLICY)
    assert action == (Redrive() if status is OperationStatus.UNKNOWN else AskLater())


@pytest.mark.parametrize("status", OPEN_STATUSES)
@pytest.mark.parametrize("now", [0, EXPIRY, EXPIRY + 365 * 86_400_000])
def test_no_answer_never_expires_anything(status: OperationStatus, now: int) -> None:
    assert resolve(tracked(status=status, deadline_at=DEADLINE), UNAVAILABLE, now, POLICY) == AskLater()


# ---- first_check_at / next_check_at -------------------------------------------------------------------------


def test_an_unknown_op_is_looked_up_soon_and_an_open_one_after_check_after() -> None:
    policy = ReconcilePolicy(check_after_ms=30_000, unknown_check_after_ms=1_000)
    assert first_check_at(tracked(status=OperationStatus.UNKNOWN, since=5_000), policy) == 6_000
    assert first_check_at(tracked(status=OperationStatus.RESERVED, since=5_000), policy) == 35_000
    assert first_check_at(tracked(status=OperationStatus.PROCESSING, since=5_000), policy) == 35_000
    assert (
        first_check_at(tracked(status=OperationStatus.PROCESSING, since=0), ReconcilePolicy(check_after_ms=7))
        == 7
    )


NO_DEADLINE = tracked(deadline_at=None)


def _delay(checks: int, jitter: float, policy: ReconcilePolicy = POLICY, op: TrackedOp = NO_DEADLINE) -> int:
    now = 1_000_000
    return next_check_at(op, checks, now, jitter, policy) - now


def test_backoff_doubles_with_each_check_until_the_cap() -> None:
    policy = ReconcilePolicy(backoff_base_ms=1_000, backoff_cap_ms=60_000)
    delays = [_delay(c, 0.0, policy) for c in range(8)]
    # jitter 0 is exactly half the backoff: 1 s * 2^c / 2, capped at 60 s / 2
    assert delays == [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]
    assert _delay(10_000, 0.0, policy) == 30_000  # no overflow, still capped
    assert _delay(3, 0.999_999, policy) == pytest.approx(8_000, abs=1)


@settings(max_examples=300, deadline=None)
@given(
    checks=st.integers(0, 200),
    jitter=st.floats(0.0, 1.0, exclude_max=True),
    base=st.integers(2, 10_000),
    cap=st.integers(2, 3_600_000),
)
def test_jitter_keeps_the_wait_between_half_and_the_full_backoff(
    checks: int, jitter: float, base: int, cap: int
) -> None:
    policy = ReconcilePolicy(backoff_base_ms=base, backoff_cap_ms=cap)
    full = min(cap, base * 2 ** min(checks, 30))
    assert full // 2 <= _delay(checks, jitter, policy) <= full


def test_the_next_check_is_never_scheduled_past_expiry_while_it_is_ahead() -> None:
    op = tracked(deadline_at=DEADLINE)
    assert next_check_at(op, 20, EXPIRY - 1, 0.5, POLICY) == EXPIRY
    assert next_check_at(op, 20, EXPIRY - 10_000, 0.9, POLICY) == EXPIRY
    # far ahead of expiry: plain backoff
    assert next_check_at(op, 1, 0, 0.0, POLICY) == 1_000
    # at or past expiry the operation can expire at any check: plain backoff again
    assert next_check_at(op, 20, EXPIRY, 0.0, POLICY) == EXPIRY + 30_000
    assert next_check_at(op, 1, EXPIRY + 5, 0.0, POLICY) == EXPIRY + 5 + 1_000


@settings(max_examples=300, deadline=None)
@given(
    checks=st.integers(0, 60),
    jitter=st.floats(0.0, 1.0, exclude_max=True),
    deadline=st.integers(0, 10**9),
    now=st.integers(0, 2 * 10**9),
)
def test_next_check_is_after_now_and_not_past_a_future_expiry(
    checks: int, jitter: float, deadline: int, now: int
) -> None:
    op = tracked(deadline_at=deadline)
    at = next_check_at(op, checks, now, jitter, POLICY)
    expiry = deadline + POLICY.expire_grace_ms
    assert at > now
    if now < expiry:
        assert at <= expiry
    else:
        assert at - now >= POLICY.backoff_base_ms // 2


# ---- resolve, as a property ----------------------------------------------------------------------------------

_ops = st.builds(
    tracked,
    st.just("pay_1"),
    status=st.sampled_from(OPEN_STATUSES),
    kind=st.sampled_from([OperationKind.PAYMENT, OperationKind.TOP_UP]),
    since=st.integers(0, 10**9),
    deadline_at=st.none() | st.integers(0, 10**9),
)
_lookups = st.builds(
    Lookup,
    kind=st.sampled_from(list(LookupKind)),
    succeeded=st.booleans(),
    movement_id=st.none() | st.text(min_size=1, max_size=8),
    amount=st.none() | st.integers(1, 10**6),
    failure_code=st.none() | st.sampled_from(["card_declined", "insufficient_funds"]),
)
_policies = st.builds(ReconcilePolicy, expire_grace_ms=st.integers(0, 120_000))


@settings(max_examples=500, deadline=None)
@given(op=_ops, lookup=_lookups, now=st.integers(0, 2 * 10**9), policy=_policies)
def test_expire_needs_not_found_past_expiry_and_an_outcome_needs_found(
    op: TrackedOp, lookup: Lookup, now: int, policy: ReconcilePolicy
) -> None:
    action = resolve(op, lookup, now, policy)
    if isinstance(action, Expire):
        assert lookup.kind is LookupKind.NOT_FOUND
        assert op.deadline_at is not None
        assert now >= op.deadline_at + policy.expire_grace_ms
    if isinstance(action, RecordOutcome):
        assert lookup.kind is LookupKind.FOUND
        assert action.movement_id == lookup.movement_id
        assert action.amount == lookup.amount
        assert (action.status is PspOutcomeStatus.SUCCEEDED) == lookup.succeeded
    if isinstance(action, Redrive):
        assert lookup.kind is LookupKind.NOT_FOUND
        assert op.status is OperationStatus.UNKNOWN
    if lookup.kind is LookupKind.FOUND:
        assert isinstance(action, RecordOutcome)
    if lookup.kind is LookupKind.UNAVAILABLE:
        assert action == AskLater()
