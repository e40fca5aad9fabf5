"""The requests both systems get: unique keys, members paying from their own accounts, /proc parsing."""

from __future__ import annotations

import orjson

from bench.config import Accounts
from bench.cpu import parse_stat
from bench.workload import MAX_AMOUNT, Workload
from bench.world import HOT_ACCOUNT, World, account_id


def test_world_members_and_keys() -> None:
    w = World.create(accounts=10, users=4, hot_users=6)
    assert len(w.keys) == 6
    assert len(set(w.keys.values())) == 6
    assert w.members(3) == ("user_003", "user_000")
    accounts = w.all_accounts()
    assert accounts[0][0] == HOT_ACCOUNT
    assert accounts[0][2] == w.hot_members
    assert len(accounts) == 11


def test_every_request_is_paid_by_a_member_with_a_fresh_key() -> None:
    w = World.create(accounts=50, users=10, hot_users=5)
    for kind in Accounts:
        wl = Workload(w, kind, run_tag="t", seed=1, zipf_s=1.1)
        keys = set()
        for i in range(300):
            call = wl.call(i)
            account = call.path.split("/")[3]
            user = next(u for u, k in w.keys.items() if call.headers["Authorization"] == f"Bearer {k}")
            if account == HOT_ACCOUNT:
                assert kind is Accounts.HOT
                assert user in w.hot_members
            else:
                index = int(account.rsplit("_", 1)[1])
                assert account == account_id(index)
                assert user in w.members(index)
            body = orjson.loads(call.body)
            assert 1 <= body["amount"] <= MAX_AMOUNT
            assert isinstance(body["amount"], int)  # money in integer minor units
            keys.add(call.headers["Idempotency-Key"])
        assert len(keys) == 300


def test_parse_stat_reads_ppid_and_cpu_even_with_odd_names() -> None:
    fields = ["S", "42"] + ["0"] * 9 + ["150", "50"] + ["0"] * 30
    ppid, cpu_s = parse_stat("1234 (odd) name)) " + " ".join(fields))
    assert ppid == 42
    assert cpu_s > 0
