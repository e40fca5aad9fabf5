"""The payment requests of one run: account (hot, uniform or Zipf), paying member, amount, key. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson

from bench.config import Accounts
from bench.sampling import AccountPicker, HotPicker, UniformPicker, ZipfPicker
from bench.world import CURRENCY, HOT_ACCOUNT, World, account_id

MAX_AMOUNT = 5_000  # minor units


@dataclass(frozen=True, slots=True)
class PaymentCall:
    path: str
    headers: dict[str, str]
    body: bytes


class Workload:
    """``call(i)`` is the i-th request of the run. Keys carry ``run_tag`` so that runs never replay
    each other's keys, and ``i`` so that no two requests of a run share one."""

    def __init__(self, world: World, kind: Accounts, *, run_tag: str, seed: int, zipf_s: float) -> None:
        self._world = world
        self._kind = kind
        self._tag = run_tag
        self._rng = random.Random(seed)
        picker: AccountPicker
        if kind is Accounts.HOT:
            picker = HotPicker()
        elif kind is Accounts.UNIFORM:
            picker = UniformPicker(world.accounts)
        else:
            picker = ZipfPicker(world.accounts, zipf_s, seed=seed)
        self._picker = picker
        self._hot_members = world.hot_members

    def call(self, i: int) -> PaymentCall:
        rng = self._rng
        if self._kind is Accounts.HOT:
            account, user = HOT_ACCOUNT, self._hot_members[i % len(self._hot_members)]
        else:
            index = self._picker.pick(rng)
            account, user = account_id(index), self._world.members(index)[i % 2]
        body = orjson.dumps(
            {"amount": rng.randint(1, MAX_AMOUNT), "currency": CURRENCY, "payee": f"shop_{i % 97}"}
        )
        headers = {
            "Authorization": f"Bearer {self._world.keys[user]}",
            "Idempotency-Key": f"{self._tag}-{i}",
            "Content-Type": "application/json",
        }
        return PaymentCall(f"/v1/accounts/{account}/payments", headers, body)
