"""Exceptions of the gateway. Each carries a stable ``ErrorCode``; ``payments.gateway.problems`` alone turns
codes into HTTP statuses, so handlers raise these and never pick a status themselves."""

from __future__ import annotations

from typing import Any

from payments.schemas.errors import ErrorCode, PaymentsError


class GatewayError(PaymentsError):
    """An error answered to the client as a problem document.

    ``extensions`` become extra members of the document (e.g. ``payment_id``); ``retry_after_s`` sets the
    ``Retry-After`` header where the status calls for one.
    """

    def __init__(
        self,
        detail: str,
        *,
        code: ErrorCode,
        retriable: bool | None = None,
        extensions: dict[str, Any] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(detail, code=code, retriable=retriable)
        self.extensions = dict(extensions or {})
        self.retry_after_s = retry_after_s


class IntakeUnavailable(GatewayError):
    """The command could not be made durable in Kafka (time-out, broker down, full local queue).

    Retriable: command ids are deterministic, so the processor dedupes a command that did land after all.
    """

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail, code=ErrorCode.INTAKE_UNAVAILABLE, retriable=True)
        self.reason = reason  # metric label: timeout | error | queue_full | fatal


class DependencyUnavailable(GatewayError):
    """Redis (or another dependency) is needed to answer and is unreachable."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code=ErrorCode.DEPENDENCY_UNAVAILABLE, retriable=True)


class InvalidQuery(GatewayError):
    """A query parameter is invalid (e.g. a cursor that this gateway did not issue): 400 ``validation_error``.

    Unlike a bad body (422), the request itself is malformed, so ``problems`` answers 400."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code=ErrorCode.VALIDATION_ERROR)


class ReadModelRebuilding(GatewayError):
    """The read model is incomplete: Redis lost it (a restart without persistence, ``FLUSHALL``) and the
    projector is rebuilding it from Kafka. 503 with ``Retry-After`` rather than a read that would show an
    existing account as absent (404) or an older version than one already shown
    (docs/design.md invariant 10)."""

    def __init__(self) -> None:
        super().__init__(
            "the read model is being rebuilt from the event log; retry shortly",
            code=ErrorCode.READ_MODEL_REBUILDING,
            retriable=True,
        )
