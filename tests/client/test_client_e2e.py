"""``payments.client`` against the real stack (gateway, processor, psp-caller, projector, reconciler, PSP
simulator as processes; real Kafka and Redis). Money is checked from what the server recorded — the
results topic and the read model — not from what the client was told."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from payments.client import (
    AccountNotFound,
    AsyncClient,
    Client,
    ClientSettings,
    InsufficientFunds,
    NotAMember,
)
from payments.schemas.api import AccountOut
from tests.e2e.conftest import Stack
from tests.e2e.test_idempotency_e2e import succeeded_per_payment

pytestmark = pytest.mark.integration

FUNDING = 100_000


def client(stack: Stack, user: str = "admin", transport: httpx.BaseTransport | None = None) -> Client:
    key = stack.admin_key if user == "admin" else stack.keys[user]
    return Client(stack.base_url, key, transport=transport)


def funded_account(stack: Stack, members: list[str], funding: int = FUNDING) -> str:
    with client(stack) as admin:
        opened = admin.open_account(currency="EUR", members=members, wait_s=10)
        assert opened.final, opened
        assert isinstance(opened.value, AccountOut)
        account_id = opened.value.id
        funded = admin.adjust_balance(account_id, amount=funding, currency="EUR", reason="funding", wait_s=10)
        assert (funded.status_code, funded.final, funded.value.status) == (201, True, "succeeded")
        return account_id


def test_a_payment_with_wait_succeeds_and_its_replay_says_so(stack: Stack) -> None:
    account_id = funded_account(stack, ["alice", "bob"])
    with client(stack, "alice") as alice:
        reply = alice.create_payment(account_id, amount=1250, currency="EUR", payee="merchant-42", wait_s=10)
        assert (reply.status_code, reply.final, reply.replayed, reply.attempts) == (201, True, False, 1)
        assert reply.value.status == "succeeded"
        assert reply.location == f"/v1/payments/{reply.value.id}"
        assert reply.preference_applied == "wait=10"
        # The same logical call again (the caller kept the key): the stored answer, marked replayed.
        again = alice.create_payment(
            account_id,
            amount=1250,
            currency="EUR",
            payee="merchant-42",
            idempotency_key=reply.idempotency_key,
        )
        assert (again.status_code, again.replayed, again.value.id) == (201, True, reply.value.id)
        assert alice.get_payment(reply.value.id).status == "succeeded"
        assert alice.get_account(account_id).posted == FUNDING - 1250
    assert succeeded_per_payment(stack, account_id) == {reply.value.id: 1}


def test_decisions_raise_typed_errors_and_are_not_retried(stack: Stack) -> None:
    account_id = funded_account(stack, ["alice"], funding=1_000)
    with client(stack, "alice") as alice:
        with pytest.raises(InsufficientFunds) as info:
            alice.create_payment(account_id, amount=5_000, currency="EUR", payee="merchant-42", wait_s=10)
        err = info.value
        assert (err.status, err.code, err.retriable, err.attempts) == (402, "insufficient_funds", False, 1)
        assert err.operation_id is not None
        assert alice.get_payment(err.operation_id).status == "declined"
        assert alice.get_account(account_id).available == 1_000
    with client(stack, "mallory") as mallory, pytest.raises(NotAMember):
        mallory.create_payment(account_id, amount=1, currency="EUR", payee="merchant-42")
    with client(stack) as admin, pytest.raises(AccountNotFound):
        admin.get_account("acct_" + uuid.uuid4().hex[:26])


class DropFirstAnswer(httpx.BaseTransport):
    """The real network, except that the answer to the first POST is lost: the server did the work, the
    client sees the connection reset (what a crashing load balancer or a flaky network does)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.posts: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.method != "POST":
            return response
        self.posts.append(request.headers.get("idempotency-key"))
        if len(self.posts) == 1:
            response.read()
            response.close()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    def close(self) -> None:
        self._inner.close()


def test_a_retry_after_a_lost_answer_reuses_the_key_and_the_server_sees_one_payment(stack: Stack) -> None:
    account_id = funded_account(stack, ["carol"])
    transport = DropFirstAnswer()
    with client(stack, "carol", transport=transport) as carol:
        reply = carol.create_payment(account_id, amount=700, currency="EUR", payee="grocer", wait_s=10)
        assert len(transport.posts) == 2
        assert transport.posts[0] == transport.posts[1] == reply.idempotency_key
        # The second attempt got the first one's stored answer: the payment it made, not a new one.
        assert (reply.status_code, reply.replayed, reply.attempts) == (201, True, 2)
        assert [p.id for p in carol.iter_payments(account_id)] == [reply.value.id]
        assert carol.get_account(account_id).posted == FUNDING - 700
    assert succeeded_per_payment(stack, account_id) == {reply.value.id: 1}


def test_paging_walks_every_item(stack: Stack) -> None:
    account_id = funded_account(stack, ["dave"])
    pages: list[httpx.Request] = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/payments") and request.method == "GET":
                pages.append(request)
            return super().handle_request(request)

    with client(stack, "dave", transport=Counting()) as dave:
        made = [
            dave.create_payment(account_id, amount=10 + i, currency="EUR", payee="grocer").value.id
            for i in range(7)
        ]
        # 202 means accepted, not yet in the read model: wait until it lists them all.
        deadline = time.monotonic() + 60
        while True:
            pages.clear()
            listed = [p.id for p in dave.iter_payments(account_id, page_size=3)]
            if len(listed) == 7 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert listed == made  # ascending by the account version that created each one
        assert len(pages) == 3  # 3 + 3 + 1
        assert [r.url.params.get("cursor") is None for r in pages] == [True, False, False]
        ledger = list(dave.iter_ledger(account_id, page_size=1))
        assert ledger[0].kind == "adjustment"
        assert ledger[0].net == FUNDING


async def set_psp_latency(stack: Stack, ms: int | None) -> None:
    async with httpx.AsyncClient(base_url=stack.psp_url, timeout=10) as psp:
        if ms is None:
            r = await psp.delete("/_sim/faults")
        else:
            r = await psp.post("/_sim/faults", json={"latency_ms": {"median": ms, "max": ms}})
        assert r.status_code == 200, r.text


async def test_async_a_409_in_flight_is_retried_until_the_final_answer(stack: Stack) -> None:
    account_id = funded_account(stack, ["bob"])
    key = str(uuid.uuid4())
    body = {"amount": 900, "currency": "EUR", "payee": "merchant-42"}
    await set_psp_latency(stack, 2_000)  # the first request stays in flight ≥ 2 s
    try:
        async with (
            AsyncClient(stack.base_url, stack.keys["bob"]) as first,
            AsyncClient(stack.base_url, stack.keys["bob"], settings=ClientSettings(deadline_s=20)) as second,
        ):
            started = asyncio.create_task(
                first.create_payment(account_id, **body, idempotency_key=key, wait_s=10)  # type: ignore[arg-type]
            )
            await asyncio.sleep(0.5)
            # The same logical payment from another process (e.g. a retrying worker): 409 until the first
            # one's answer is stored, then that answer.
            retried = await second.create_payment(account_id, **body, idempotency_key=key)  # type: ignore[arg-type]
            original = await started
    finally:
        await set_psp_latency(stack, None)
    assert (original.status_code, original.final, original.replayed) == (201, True, False)
    assert retried.attempts >= 2  # at least one 409 idempotency_key_in_use, retried with the same key
    assert (retried.status_code, retried.final, retried.replayed) == (201, True, True)
    assert retried.value.id == original.value.id
    async with AsyncClient(stack.base_url, stack.keys["bob"]) as bob:
        assert [p.id async for p in bob.iter_payments(account_id)] == [original.value.id]
        assert (await bob.get_account(account_id)).posted == FUNDING - 900
    assert succeeded_per_payment(stack, account_id) == {original.value.id: 1}
