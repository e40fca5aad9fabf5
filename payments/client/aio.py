"""``AsyncClient``: the asyncio client. Sends what ``calls`` builds and does what ``CallRun`` decides, like
``Client`` (``sync.py``) does with blocking I/O."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TypeVar

import httpx

from payments.client import calls
from payments.client.core import Call, CallRun, Done, Fail, Reply
from payments.client.pages import awalk
from payments.client.settings import ClientSettings
from payments.schemas.api import (
    AccountOut,
    AccountPending,
    AdjustmentOut,
    LedgerEntryOut,
    LedgerPage,
    MemberChangeOut,
    PaymentOut,
    PaymentPage,
    TopUpOut,
    TopUpPage,
)

T = TypeVar("T")


class AsyncClient:
    """An asyncio client of the payments API for one API key.

    ``transport`` replaces httpx's network transport (tests, proxies); ``rng`` and ``sleep`` exist so that
    the backoff can be made deterministic. Use as an async context manager, or call ``aclose()``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        settings: ClientSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings if settings is not None else ClientSettings()
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": self.settings.user_agent},
            transport=transport,
        )
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, call: Call[T]) -> Reply[T]:
        """Run one logical call: attempts with one Idempotency-Key until a decision, or raise."""
        run = CallRun(call, self.settings, self._rng, time.monotonic())
        while True:
            parts = run.next_request(time.monotonic())
            request = self._http.build_request(
                parts.method,
                parts.url,
                headers=parts.headers,
                content=parts.content,
                params=parts.params,
                timeout=parts.timeout,
            )
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                step = run.on_transport_error(exc, now=time.monotonic())
            else:
                step = run.on_response(
                    response.status_code,
                    response.headers,
                    response.content,
                    now=time.monotonic(),
                    wall=datetime.now(UTC),
                )
            if isinstance(step, Done):
                return step.reply
            if isinstance(step, Fail):
                raise step.error
            await self._sleep(step.seconds)

    # --- accounts ----------------------------------------------------------------------------------------

    async def open_account(
        self,
        *,
        currency: str,
        members: Sequence[str],
        overdraft_limit: int = 0,
        idempotency_key: str | None = None,
        wait_s: int | None = None,
    ) -> Reply[AccountOut | AccountPending]:
        """Admin. ``final`` once open (201); a 202 carries the id of the account being opened."""
        return await self.send(
            calls.open_account(
                currency=currency,
                members=members,
                overdraft_limit=overdraft_limit,
                idempotency_key=idempotency_key,
                wait_s=wait_s,
            )
        )

    async def get_account(self, account_id: str) -> AccountOut:
        return (await self.send(calls.get_account(account_id))).value

    async def add_member(
        self, account_id: str, user_id: str, *, idempotency_key: str | None = None, wait_s: int | None = None
    ) -> Reply[MemberChangeOut]:
        return await self.send(
            calls.add_member(account_id, user_id, idempotency_key=idempotency_key, wait_s=wait_s)
        )

    async def remove_member(
        self, account_id: str, user_id: str, *, idempotency_key: str | None = None, wait_s: int | None = None
    ) -> Reply[MemberChangeOut]:
        return await self.send(
            calls.remove_member(account_id, user_id, idempotency_key=idempotency_key, wait_s=wait_s)
        )

    async def adjust_balance(
        self,
        account_id: str,
        *,
        amount: int,
        currency: str,
        reason: str,
        idempotency_key: str | None = None,
        wait_s: int | None = None,
    ) -> Reply[AdjustmentOut]:
        """Admin. Signed minor units: positive credits, negative debits."""
        return await self.send(
            calls.adjust_balance(
                account_id,
                amount=amount,
                currency=currency,
                reason=reason,
                idempotency_key=idempotency_key,
                wait_s=wait_s,
            )
        )

    # --- payments ----------------------------------------------------------------------------------------

    async def create_payment(
        self,
        account_id: str,
        *,
        amount: int,
        currency: str,
        payee: str,
        description: str | None = None,
        idempotency_key: str | None = None,
        wait_s: int | None = None,
    ) -> Reply[PaymentOut]:
        """202 (not final) once durably accepted; with ``wait_s`` 201 if it succeeded in time. A decline or
        PSP failure raises (``InsufficientFunds``, ``PspDeclined``, ``OperationExpired``)."""
        return await self.send(
            calls.create_payment(
                account_id,
                amount=amount,
                currency=currency,
                payee=payee,
                description=description,
                idempotency_key=idempotency_key,
                wait_s=wait_s,
            )
        )

    async def get_payment(self, payment_id: str) -> PaymentOut:
        return (await self.send(calls.get_payment(payment_id))).value

    async def list_payments(
        self, account_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> PaymentPage:
        """One page; ``iter_payments`` walks them all."""
        return (await self.send(calls.list_payments(account_id, limit=limit, cursor=cursor))).value

    def iter_payments(self, account_id: str, *, page_size: int | None = None) -> AsyncIterator[PaymentOut]:
        async def page(cursor: str | None) -> PaymentPage:
            return await self.list_payments(account_id, limit=page_size, cursor=cursor)

        return awalk(page)

    # --- top-ups -----------------------------------------------------------------------------------------

    async def create_top_up(
        self,
        account_id: str,
        *,
        amount: int,
        currency: str,
        payment_method: str,
        idempotency_key: str | None = None,
        wait_s: int | None = None,
    ) -> Reply[TopUpOut]:
        return await self.send(
            calls.create_top_up(
                account_id,
                amount=amount,
                currency=currency,
                payment_method=payment_method,
                idempotency_key=idempotency_key,
                wait_s=wait_s,
            )
        )

    async def get_top_up(self, top_up_id: str) -> TopUpOut:
        return (await self.send(calls.get_top_up(top_up_id))).value

    async def list_top_ups(
        self, account_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> TopUpPage:
        return (await self.send(calls.list_top_ups(account_id, limit=limit, cursor=cursor))).value

    def iter_top_ups(self, account_id: str, *, page_size: int | None = None) -> AsyncIterator[TopUpOut]:
        async def page(cursor: str | None) -> TopUpPage:
            return await self.list_top_ups(account_id, limit=page_size, cursor=cursor)

        return awalk(page)

    # --- ledger ------------------------------------------------------------------------------------------

    async def list_ledger(
        self, account_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> LedgerPage:
        return (await self.send(calls.list_ledger(account_id, limit=limit, cursor=cursor))).value

    def iter_ledger(self, account_id: str, *, page_size: int | None = None) -> AsyncIterator[LedgerEntryOut]:
        async def page(cursor: str | None) -> LedgerPage:
            return await self.list_ledger(account_id, limit=page_size, cursor=cursor)

        return awalk(page)
