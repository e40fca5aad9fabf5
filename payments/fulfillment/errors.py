"""Errors of the reference consumer. None is retriable: each needs a human (or a new consumer version)."""

from __future__ import annotations

from payments.schemas.errors import DecodeError, ErrorCode, PaymentsError


class FulfillmentError(PaymentsError):
    code = ErrorCode.INTERNAL_ERROR


class SequenceGap(FulfillmentError):
    """A result arrived whose ``seq`` is more than one past the account's ``last_seq``: results in between
    were never seen (topic truncated by retention, offsets edited, or the store restored from an older copy
    than its offsets). Applying it would silently lose the missing results, so the consumer stops."""

    retriable = False

    def __init__(self, detail: str, *, account_id: str, expected: int, got: int) -> None:
        super().__init__(detail)
        self.account_id = account_id
        self.expected = expected
        self.got = got


class UndecodableResult(FulfillmentError, DecodeError):
    """A record on the results topic is not a ``ResultEvent`` this consumer understands (e.g. a newer
    schema version). Skipping it could lose a payment, so the consumer stops before it."""

    retriable = False


class ConsumerFailed(FulfillmentError):
    """The Kafka consumer hit a fatal error."""

    retriable = False
