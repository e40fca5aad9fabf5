"""One HTTP call to the PSP for a :class:`PspRequest`, and what its answer means for money.

Every attempt for one operation sends the same ``Idempotency-Key`` (the op id) and the same body, built
only from the request's fields: a retry, or a redelivery after a crash, is then a replay at the PSP, never a
second movement (and never a 422 for "key reused with other parameters").

Answers are classified by what they prove about the movement (see :class:`AnswerKind`); the retry policy
and the breaker act on the class, never on raw status codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from payments.pspclient.http import MaybeSent, NotSent, PspHttp
from payments.schemas.money import MAX_AMOUNT
from payments.schemas.psp import PspRequest, PspRequestKind

_MAX_MOVEMENT_ID = 255  # RecordPspOutcome.psp_movement_id
_MAX_FAILURE_CODE = 64  # RecordPspOutcome.psp_failure_code


class AnswerKind(StrEnum):
    SUCCEEDED = "succeeded"  # 201: the movement exists and succeeded
    FAILED = "failed"  # 402: the movement exists and was declined
    # Definitely not committed and the PSP is not serving (429, 503, connection refused): retry for free,
    # and tell the breaker.
    UNAVAILABLE = "unavailable"
    # The PSP may or may not have committed (time-out, 500, 502, dropped connection): retry on the same
    # key, which costs one unit of the bounded attempt budget.
    AMBIGUOUS = "ambiguous"
    IN_FLIGHT = "in_flight"  # 409: an earlier attempt with this key is still running at the PSP
    # 400/422 and other 4xx: our request is wrong (a bug); retrying cannot help. Reported as unknown.
    REJECTED = "rejected"


RETRY_KINDS = frozenset({AnswerKind.UNAVAILABLE, AnswerKind.AMBIGUOUS, AnswerKind.IN_FLIGHT})


@dataclass(frozen=True)
class Answer:
    kind: AnswerKind
    status_code: int | None = None  # None when no HTTP response arrived
    movement_id: str | None = None
    failure_code: str | None = None
    amount: int | None = None
    retry_after_s: float | None = None
    # Short, log-safe description (error class or problem code); never a request or response body.
    detail: str = ""


class InvalidPspRequest(ValueError):
    """The request lacks what its kind needs (payee, payment method): no call can be made for it."""


@dataclass(frozen=True)
class PspCall:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


def build_call(req: PspRequest) -> PspCall:
    """The exact path, body and headers of every attempt for ``req``. Pure and deterministic."""
    metadata = {"account_id": req.account_id, "op_id": req.op_id}  # webhook ingress routes on account_id
    common: dict[str, Any] = {
        "amount": req.amount,
        "currency": req.currency,
        "reference": req.op_id,
        "metadata": metadata,
    }
    if req.kind is PspRequestKind.TRANSFER:
        if not req.payee:
            raise InvalidPspRequest("a transfer needs a payee")
        path, body = "/v1/transfers", {**common, "payee": req.payee}
    else:
        if not req.payment_method:
            raise InvalidPspRequest("a charge needs a payment_method")
        path, body = "/v1/charges", {**common, "payment_method": req.payment_method}
    return PspCall(path, body, {"Idempotency-Key": req.op_id})


class PspClient:
    """The money calls (transfers, charges) over the shared :class:`PspHttp`. One per process."""

    def __init__(self, http: PspHttp) -> None:
        self._http = http

    async def aclose(self) -> None:
        await self._http.aclose()

    async def attempt(self, call: PspCall) -> Answer:
        """Make one attempt and classify it. Never raises for transport or HTTP errors."""
        try:
            reply = await self._http.request("POST", call.path, body=call.body, headers=call.headers)
        except NotSent as exc:
            # The connection was never made: nothing can have been committed.
            return Answer(AnswerKind.UNAVAILABLE, detail=exc.detail)
        except MaybeSent as exc:
            # Sent (or partly sent) and no answer: time-outs, dropped or reset connections.
            return Answer(AnswerKind.AMBIGUOUS, detail=exc.detail)
        return classify(reply.status, reply.content, reply.retry_after)


def classify(status: int, content: bytes, retry_after: str | None = None) -> Answer:
    """What an HTTP answer of the PSP's money endpoints proves. Pure."""
    wait = _retry_after(retry_after)
    if status in (201, 402):
        body = _json(content)
        movement_id = body.get("id") if body else None
        # Bounded like RecordPspOutcome's fields: an outcome that cannot be encoded would stop the worker
        # on this record at every restart.
        if not isinstance(movement_id, str) or not 0 < len(movement_id) <= _MAX_MOVEMENT_ID:
            # A final status with a body we cannot read: a replay returns the same stored body, so this
            # will not get better, but it is not our bug either. Ambiguous: bounded retries, then unknown.
            return Answer(AnswerKind.AMBIGUOUS, status, detail="unreadable_movement")
        amount = body.get("amount") if body else None
        if status == 201:
            return Answer(AnswerKind.SUCCEEDED, status, movement_id, amount=_int(amount))
        code = body.get("failure_code") if body else None
        return Answer(
            AnswerKind.FAILED,
            status,
            movement_id,
            failure_code=code if isinstance(code, str) and len(code) <= _MAX_FAILURE_CODE else None,
            amount=_int(amount),
        )
    if status == 409:
        return Answer(AnswerKind.IN_FLIGHT, status, retry_after_s=wait, detail=_code(content))
    if status in (429, 503):
        return Answer(AnswerKind.UNAVAILABLE, status, retry_after_s=wait, detail=_code(content))
    if 400 <= status < 500:
        return Answer(AnswerKind.REJECTED, status, detail=_code(content))
    # 500 (before or after commit: indistinguishable), 502 ambiguous HTML, 504, anything unexpected.
    return Answer(AnswerKind.AMBIGUOUS, status, retry_after_s=wait, detail=_code(content))


def _json(content: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _code(content: bytes) -> str:
    """The problem ``code`` of an error body, for logs and metrics; never the body itself."""
    body = _json(content)
    code = body.get("code") if body else None
    return code if isinstance(code, str) and len(code) <= 64 else "-"


def _int(value: object) -> int | None:
    """A positive amount in minor units as the outcome schema accepts it, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_AMOUNT:
        return value
    return None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; the HTTP-date form is ignored (the PSP sends seconds)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 3600 else None
