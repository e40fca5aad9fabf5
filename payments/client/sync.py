"""``Client``: the blocking client. Sends what ``calls`` builds and does what ``CallRun`` decides."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TypeVar

import httpx

from payments.client import calls
from payments.client.core import Call, CallRun, Done, Fail, Reply
from payments.client.pages import walk
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


class Client:
    """A blocking client of the payments API for one API key.

    ``transport`` replaces httpx's network transport (tests, proxies); ``rng`` and ``sleep`` exist so that
    the backoff can be made deterministic. Use as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        settings: ClientSettings | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings if settings is not None else ClientSettings()
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": self.settings.user_agent},
            transport=transport,
        )
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: Call[T]) -> Reply[T]:
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
                response = self._http.send(request)
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
            self._sleep(step.seconds)

    # --- accounts ----------------------------------------------------------------------------------------

    def open_account(
        self,
        *,
        currency: str,
        members: Sequence[str],
        overdraft_limit: int = 0,
        idempotency_key: str | None = None,
        wait_s: int | None = None,
    ) -> Reply[AccountOut | AccountPending]:
        """Admin. ``final`` once open (201); a 202 carries the id of the account being opened."""
        return self.send(
            calls.open_account(
                currency=currency,
                members=members,
                overdraft_limit=overdraft_limit,
                idempotency_key=idempotency_key,
                wait_s=wait_s,
            )
        )

    def get_account(self, account_id: str) -> AccountOut:
        return self.send(calls.get_account(account_id)).value

    def add_member(
        self, account_id: str, user_id: str, *, idempotency_key: str | None = None, wait_s: int | None = None
    ) -> Reply[MemberChangeOut]:
        return self.send(
            calls.add_member(account_id, user_id, idempotency_key=idempotency_key, wait_s=wait_s)
        )

    def remove_member(
        self, account_id: str, user_id: str, *, idempotency_key: str | None = None, wait_s: int | None = None
    ) -> Reply[MemberChangeOut]:
        return self.send(
            calls.remove_member(account_id, user_id, idempotency_key=idempotency_key, wait_s=wait_s)
        )

    def adjust_balance(
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
        return self.send(
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

    def create_payment(
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
        return self.send(
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

    def get_payment(self, payment_id: str) -> PaymentOut:
        return self.send(calls.get_payment(payment_id)).value

    def list_payments(
        self, account_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> PaymentPage:
        """One page; ``iter_payments`` walks them all."""
        return self.send(calls.list_payments(account_id, limit=limit, cursor=cursor)).value

    def iter_payments(self, account_id: str, *, page_size: int | None = None) -> Iterator[PaymentOut]:
        def page(cursor: str | None) -> PaymentPage:
            return self.list_payments(account_id, limit=page_size, cursor=cursor)

        return walk(page)

    # --- top-ups -----------------------------------------------------------------------------------------

    def create_top_up(
        self,
        account_id: str,
        *,
        amount: int,
        currency: str,
        payment_method: str,
        idempotency_key: str | None = None,
        wait_s: int | None = None,
    ) -> Reply[TopUpOut]:
        return self.send(
            calls.create_top_up(
                account_id,
                amount=amount,
                currency=currency,
                payment_method=payment_method,
                idempotency_key=idempotency_key,
                wait_s=wait_s,
            )
        )

    def get_top_up(self, top_up_id: str) -> TopUpOut:
        return self.send(calls.get_top_up(top_up_id)).value

    def list_top_ups(
        self, account_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> TopUpPage:
        return self.send(calls.list_top_ups(account_id, limit=limit, cursor=cursor)).value

    def iter_top_ups(self, account_id: str, *, page_size: int | None = None) -> Iterator[TopUpOut]:
        def page(cursor: str | None) -> TopUpPage:
            return self.list_top_ups(account_id, limit=page_size, cursor=cursor)

        return walk(page)

    # --- ledger ------------------------------------------------------------------------------------------

    def list_ledger(
        self, account_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> LedgerPage:
        return self.send(calls.list_ledger(account_id, limit=limit, cursor=cursor)).value

    def iter_ledger(self, account_id: str, *, page_size: int | None = None) -> Iterator[LedgerEntryOut]:
        def page(cursor: str | None) -> LedgerPage:
            return self.list_ledger(account_id, limit=page_size, cursor=cursor)

        return walk(page)
