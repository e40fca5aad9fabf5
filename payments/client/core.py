"""The part of the client that ``Client`` and ``AsyncClient`` share: one logical call's attempts as a pure
state machine (``CallRun``) and the parsing of answers. No I/O: the two clients send the requests, sleep
and read the clock; everything they decide, they ask ``CallRun``.

One ``CallRun`` is one logical operation: its Idempotency-Key is fixed before the first attempt and every
attempt sends it unchanged, which is what makes the retries safe (``payments.client.retry``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from payments.client import retry
from payments.client.errors import (
    PaymentsClientError,
    TransportFailed,
    UnexpectedResponse,
    error_class,
)
from payments.client.settings import ClientSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One logical API call: what to send and how to read the successful answer."""

    method: str
    path: str
    parse: Callable[[int, bytes], T]  # (status, body) of a 2xx -> the value
    is_final: Callable[[int, T], bool]
    body: BaseModel | None = None
    params: Mapping[str, str | int] | None = None
    # Sent on every attempt; None only for reads (GET), which are safe to repeat by nature.
    idempotency_key: str | None = None
    wait_s: int | None = None  # Prefer: wait=N


@dataclass(frozen=True)
class Reply(Generic[T]):
    """A successful answer to a write, with what the headers said about it.

    ``final``: the operation reached its end state (201, or a terminal status; 200 for a membership
    change); a 202 is not final: read the resource later with its ``get_...`` method.
    ``replayed``: the server answered from its idempotency record (``Idempotent-Replayed: true``), i.e. an
    earlier attempt with this key was accepted; it is the answer that attempt got, byte for byte.
    """

    value: T
    status_code: int
    final: bool
    replayed: bool
    idempotency_key: str | None
    attempts: int
    preference_applied: str | None = None
    location: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestParts:
    """Arguments of ``httpx.Client.build_request`` / ``httpx.AsyncClient.build_request``."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None
    params: dict[str, str | int] | None
    timeout: httpx.Timeout


@dataclass(frozen=True)
class Done(Generic[T]):
    reply: Reply[T]


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Fail:
    error: PaymentsClientError


Step = Done[T] | Sleep | Fail


def _key_hint(key: str | None) -> str:
    # Logs show a prefix only: a full key would let a log reader replay the caller's requests.
    return "-" if key is None else key[:8] + "..."


class CallRun(Generic[T]):
    """The attempts of one ``Call``. Feed it each outcome; it says what to do next.

    ``started`` and the ``now`` arguments are monotonic seconds (``time.monotonic()``); ``wall`` is the
    wall clock, needed only for a ``Retry-After`` given as an HTTP-date.
    """

    def __init__(self, call: Call[T], settings: ClientSettings, rng: random.Random, started: float) -> None:
        self.call = call
        self.settings = settings
        self.attempts = 0
        self._rng = rng
        self._started = started
        # The server holds a Prefer: wait call for up to wait_s on purpose: that is not the caller's
        # budget being spent on failures, so it extends the deadline and the read time-out.
        self._wait_s = float(call.wait_s or 0)
        self.budget_s = settings.deadline_s + self._wait_s

    def next_request(self, now: float) -> RequestParts:
        """The next attempt (counted from here on)."""
        self.attempts += 1
        call = self.call
        headers = {"Accept": f"application/json, {PROBLEM_JSON}"}
        content = None
        if call.body is not None:
            content = call.body.model_dump_json(exclude_none=True).encode()
            headers["Content-Type"] = "application/json"
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        if call.wait_s is not None:
            headers["Prefer"] = f"wait={call.wait_s}"
        remaining = max(0.001, self.budget_s - (now - self._started))
        read_s = min(self.settings.timeout_s + self._wait_s, remaining)
        timeout = httpx.Timeout(min(self.settings.timeout_s, remaining), read=read_s)
        params = dict(call.params) if call.params else None
        return RequestParts(call.method, call.path, headers, content, params, timeout)

    def on_response(
        self, status: int, headers: Mapping[str, str], body: bytes, *, now: float, wall: datetime
    ) -> Step[T]:
        if 200 <= status < 300:
            return self._success(status, headers, body)
        error = problem_error(status, headers, body, key=self.call.idempotency_key, attempts=self.attempts)
        retry_after = retry.parse_retry_after(headers.get("retry-after"), wall)
        error.retry_after_s = retry_after
        return self._maybe_retry(error, error.retriable, retry_after, now)

    def on_transport_error(self, exc: Exception, *, now: float) -> Step[T]:
        retriable = retry.is_retriable_transport_error(exc)
        error = TransportFailed(
            status=None,
            code=None,
            title=type(exc).__name__,
            detail=str(exc) or type(exc).__name__,
            retriable=retriable,
            idempotency_key=self.call.idempotency_key,
            attempts=self.attempts,
        )
        error.__cause__ = exc
        return self._maybe_retry(error, retriable, None, now)

    def _maybe_retry(
        self, error: PaymentsClientError, retriable: bool, retry_after_s: float | None, now: float
    ) -> Step[T]:
        decision = retry.decide(
            retriable=retriable,
            attempts=self.attempts,
            elapsed_s=now - self._started,
            budget_s=self.budget_s,
            retry_after_s=retry_after_s,
            settings=self.settings,
            rng=self._rng,
        )
        if decision.retry:
            log.debug(
                "%s %s (key %s): attempt %d got %s; retrying in %.3f s",
                self.call.method,
                self.call.path,
                _key_hint(self.call.idempotency_key),
                self.attempts,
                error.code or error.title,
                decision.delay_s,
            )
            return Sleep(decision.delay_s)
        return Fail(error)

    def _success(self, status: int, headers: Mapping[str, str], body: bytes) -> Step[T]:
        try:
            value = self.call.parse(status, body)
        except (ValidationError, ValueError) as exc:
            error = UnexpectedResponse(
                status=status,
                code=None,
                title="Unexpected response body",
                detail=f"the {status} answer does not parse: {exc}",
                idempotency_key=self.call.idempotency_key,
                attempts=self.attempts,
            )
            error.__cause__ = exc
            return Fail(error)
        reply = Reply(
            value=value,
            status_code=status,
            final=self.call.is_final(status, value),
            replayed=headers.get("idempotent-replayed", "").lower() == "true",
            idempotency_key=self.call.idempotency_key,
            attempts=self.attempts,
            preference_applied=headers.get("preference-applied"),
            location=headers.get("location"),
            headers=dict(headers),
        )
        return Done(reply)


def problem_error(
    status: int, headers: Mapping[str, str], body: bytes, *, key: str | None = None, attempts: int = 1
) -> PaymentsClientError:
    """The typed exception for an error answer: by the problem's ``code`` when the body is a problem
    document, else ``UnexpectedResponse`` (still retriable if its status is 429 or 503)."""
    problem = _json_object(body) if _is_json(headers.get("content-type", "")) else None
    if problem is None or not isinstance(problem.get("code"), str):
        return UnexpectedResponse(
            status=status,
            code=None,
            title=f"HTTP {status}",
            detail=body[:200].decode("utf-8", "replace") or f"HTTP {status} without a problem document",
            problem=problem,
            retriable=retry.is_retriable_status(status, None),
            idempotency_key=key,
            attempts=attempts,
        )
    code = str(problem["code"])
    cls = error_class(code, status)
    return cls(
        status=status,
        code=code,
        title=str(problem.get("title", "")),
        detail=str(problem.get("detail", "")),
        problem=problem,
        retriable=retry.is_retriable_status(status, code),
        idempotency_key=key,
        attempts=attempts,
    )


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", PROBLEM_JSON) or media.endswith("+json")


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
