"""``create_app(settings)``: the baseline's FastAPI app, ``POST /v1/accounts/{account_id}/payments`` only.

The request goes through the same validation (``PaymentRequest``), the same fingerprint and the same
payment-id derivation as the gateway's, so the two differ only in how they decide and move money.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import Response

from bench.baseline.flows import Answer, PaymentCommand, PspUnknown, pay_locked, pay_unlocked, problem
from bench.baseline.psp import PspClient
from bench.baseline.settings import BaselineSettings, Variant
from payments.gateway.idempotency_keys import request_fingerprint
from payments.schemas.api import PaymentRequest
from payments.schemas.ids import derive_payment_id

PAYMENTS_ROUTE = "/v1/accounts/{account_id}/payments"
_PRINCIPAL = "SELECT user_id, role FROM api_keys WHERE key_hash = $1"


class _Principals:
    """API key → user id, cached in memory like the gateway's (fresh for ``ttl_s``)."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[str, float]] = {}

    async def user(self, pool: asyncpg.Pool, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        digest = hashlib.sha256(authorization[7:].encode()).hexdigest()
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and now - hit[1] < self._ttl_s:
            return hit[0]
        row = await pool.fetchrow(_PRINCIPAL, digest)
        if row is None:
            return None
        user_id: str = row["user_id"]
        self._cache[digest] = (user_id, now)
        return user_id


def _response(answer: Answer) -> Response:
    media = "application/json" if answer.status < 400 else "application/problem+json"
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(answer.body, status_code=answer.status, media_type=media, headers=headers)


def create_app(settings: BaselineSettings) -> FastAPI:
    pay = pay_locked if settings.variant is Variant.LOCKED else pay_unlocked
    acquire_timeout_s = settings.lock_timeout_ms / 1000
    principals = _Principals(settings.principal_cache_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            settings.dsn,
            min_size=settings.pool_size,
            max_size=settings.pool_size,
            server_settings={"lock_timeout": str(settings.lock_timeout_ms)},
        )
        psp = PspClient(
            settings.psp_url, timeout_s=settings.psp_timeout_s, max_connections=settings.psp_max_connections
        )
        app.state.pool, app.state.psp = pool, psp
        try:
            yield
        finally:
            await psp.aclose()
            await pool.close()

    app = FastAPI(title="Baseline: payments on PostgreSQL", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(PAYMENTS_ROUTE, status_code=201)
    async def request_payment(account_id: str, body: PaymentRequest, request: Request) -> Response:
        pool: asyncpg.Pool = request.app.state.pool
        user = await principals.user(pool, request.headers.get("authorization"))
        if user is None:
            return _response(problem(401, "unauthenticated", "a valid API key is required"))
        key = (request.headers.get("idempotency-key") or "").strip('"')
        if not key or len(key) > 255:
            return _response(problem(400, "idempotency_key_missing", "Idempotency-Key is required"))
        cmd = PaymentCommand(
            payment_id=derive_payment_id(user, account_id, key),
            principal=user,
            key=key,
            fingerprint=request_fingerprint("POST", PAYMENTS_ROUTE, account_id, body),
            account_id=account_id,
            amount=body.amount,
            currency=body.currency,
            payee=body.payee,
            description=body.description,
        )
        try:
            return _response(await pay(pool, request.app.state.psp, cmd, acquire_timeout_s))
        except (asyncpg.exceptions.LockNotAvailableError, TimeoutError):
            return _response(problem(503, "busy", "the account is locked by other payments; retry later"))
        except PspUnknown:
            return _response(
                problem(503, "psp_unavailable", "the PSP did not answer; retry with the same key")
            )

    return app
