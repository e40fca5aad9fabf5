"""The workload's HTTP clients and the account readers. They record what they were told, nothing else.

Each planned operation is one logical request with its own ``Idempotency-Key``. Unclear answers (no
answer, 409, 5xx, 429, 401 while Redis lost the key store) are retried with the same key and body
until a definitive answer or the end of the retry window; ``give_up`` operations never retry, so a
time-out leaves them unknown to the client, as for a shopper who closed the tab.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable

import httpx

from payments.chaos.model import AccountPlan, Attempt, Behaviour, OpKind, PlannedOp, Read, Told

_DEFINITIVE = {Told.ACCEPTED, Told.SUCCEEDED, Told.DECLINED, Told.REJECTED}


def classify(status: int) -> Told:
    if status == 201:
        return Told.SUCCEEDED
    if status == 202:
        return Told.ACCEPTED
    if status == 402:
        return Told.DECLINED
    if status == 409:
        return Told.IN_FLIGHT
    if status in (401, 429) or status >= 500:
        return Told.UNAVAILABLE
    return Told.REJECTED


def _fields(body: bytes) -> tuple[str | None, str | None]:
    """(operation id, problem code or operation status) of an answer body, when it has them."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    op_id = doc.get("id") if isinstance(doc.get("id"), str) else None
    code = doc.get("code") or doc.get("status")
    return op_id, code if isinstance(code, str) else None


class Workload:
    def __init__(
        self,
        gateway: str,
        keys: dict[str, str],
        account_ids: list[str],
        *,
        t0: float,
        attempt_timeout_s: float,
        retry_until_s: float,
        seed: int,
    ) -> None:
        self._gateway = gateway
        self._keys = keys
        self._accounts = account_ids
        self._t0 = t0
        self._timeout = attempt_timeout_s
        self._retry_until_s = retry_until_s
        self._seed = seed
        self._clients: dict[str, httpx.AsyncClient] = {}
        self.attempts: list[Attempt] = []

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _client(self, user: str) -> httpx.AsyncClient:
        if user not in self._clients:
            self._clients[user] = httpx.AsyncClient(
                base_url=self._gateway,
                headers={"Authorization": f"Bearer {self._keys[user]}"},
                timeout=self._timeout,
                limits=httpx.Limits(max_connections=64),
            )
        return self._clients[user]

    async def close(self) -> None:
        for c in self._clients.values():
            await c.aclose()

    async def run(self, ops: tuple[PlannedOp, ...]) -> None:
        tasks = []
        for op in ops:
            await asyncio.sleep(max(0.0, op.at_s - self._now()))
            tasks.append(asyncio.create_task(self._op(op)))
        await asyncio.gather(*tasks)

    async def _send(self, op: PlannedOp, *, wait: bool = False, amount: int | None = None) -> Told:
        path = "payments" if op.kind is OpKind.PAYMENT else "top-ups"
        url = f"/v1/accounts/{self._accounts[op.account]}/{path}"
        headers = {"Idempotency-Key": op.key} | ({"Prefer": "wait=2"} if wait else {})
        sent = self._now()
        try:
            r = await self._client(op.member).post(url, json=op.body(amount), headers=headers)
        except httpx.HTTPError:
            self.attempts.append(Attempt(op.index, sent, Told.NO_ANSWER, None, None, False, b""))
            return Told.NO_ANSWER
        told = classify(r.status_code)
        op_id, code = _fields(r.content)
        replayed = r.headers.get("idempotent-replayed") == "true"
        self.attempts.append(
            Attempt(op.index, sent, told, r.status_code, op_id, replayed, r.content, amount is not None, code)
        )
        return told

    async def _until_definitive(self, op: PlannedOp, rng: random.Random, *, wait: bool = False) -> Told:
        told = await self._send(op, wait=wait)
        n = 0
        while told not in _DEFINITIVE and self._now() < self._retry_until_s:
            await asyncio.sleep(min(2.0, 0.2 * 2**n) * rng.uniform(0.5, 1.0))
            n += 1
            told = await self._send(op, wait=wait)
        return told

    async def _op(self, op: PlannedOp) -> None:
        rng = random.Random(f"{self._seed}:retry:{op.index}")
        b = op.behaviour
        if b is Behaviour.GIVE_UP:
            await self._send(op)
            return
        if b is Behaviour.STORM:
            results = await asyncio.gather(*(self._send(op) for _ in range(op.storm)))
            if not any(t in _DEFINITIVE for t in results):
                await self._until_definitive(op, rng)
            return
        told = await self._until_definitive(op, rng, wait=b is Behaviour.WAIT)
        if told in _DEFINITIVE and b in (Behaviour.WAIT, Behaviour.CONFLICT):
            await self._send(op, wait=b is Behaviour.WAIT)  # a replay of the same request
        if b is Behaviour.CONFLICT:
            await self._send(op, amount=op.amount + 1)  # same key, another payload: must change nothing


async def open_accounts(
    gateway: str, admin_key: str, plans: tuple[AccountPlan, ...], timeout_s: float = 60
) -> list[str]:
    """Open and fund the run's accounts (before any fault), returning their ids in plan order."""
    ids: list[str] = []
    async with httpx.AsyncClient(
        base_url=gateway, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    ) as admin:
        for plan in plans:
            body = {"currency": "EUR", "members": list(plan.members), "overdraft_limit": plan.overdraft}
            r = await admin.post(
                "/v1/accounts", json=body, headers={"Idempotency-Key": uuid.uuid4().hex, "Prefer": "wait=10"}
            )
            r.raise_for_status()
            account_id = str(r.json()["id"])
            deadline = time.monotonic() + timeout_s
            while (await admin.get(f"/v1/accounts/{account_id}")).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"account {account_id} never became readable")
                await asyncio.sleep(0.1)
            r = await admin.post(
                f"/v1/accounts/{account_id}/adjustments",
                json={"amount": plan.funding, "currency": "EUR", "reason": "chaos funding"},
                headers={"Idempotency-Key": uuid.uuid4().hex, "Prefer": "wait=10"},
            )
            if r.status_code != 201:
                raise RuntimeError(f"funding {account_id}: {r.status_code} {r.text}")
            ids.append(account_id)
    return ids


async def read_accounts(
    gateway: str,
    admin_key: str,
    account_ids: list[str],
    every_s: float,
    stop: asyncio.Event,
    now: Callable[[], float],
) -> list[Read]:
    """One reader per account polls ``GET /v1/accounts/{id}`` until ``stop``; each reader's reads are
    sequential, so their order is the order the API answered in."""
    reads: list[Read] = []

    async def reader(client: httpx.AsyncClient, account_id: str) -> None:
        while not stop.is_set():
            try:
                r = await client.get(f"/v1/accounts/{account_id}")
            except httpx.HTTPError:
                r = None
            if r is not None and r.status_code == 200:
                doc = r.json()
                reads.append(
                    Read(account_id, now(), doc["version"], doc["available"], doc["overdraft_limit"])
                )
            await asyncio.sleep(every_s)

    async with httpx.AsyncClient(
        base_url=gateway, headers={"Authorization": f"Bearer {admin_key}"}, timeout=3
    ) as client:
        await asyncio.gather(*(reader(client, a) for a in account_ids))
    return reads
