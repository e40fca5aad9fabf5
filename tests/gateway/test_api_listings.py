"""Paged listings: ``/v1/accounts/{id}/payments``, ``/top-ups`` and ``/ledger``. Every item exactly once,
in seq order, whatever the page size; redelivered records change nothing; bad cursors are 400."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from payments.schemas.ledger import LedgerTransaction, Posting
from payments.settings import KafkaSettings
from tests.gateway.support import FakeProcessor, Gateway, new_account_id, put_account, running_gateway, writer

pytestmark = pytest.mark.integration


async def _all_pages(gw: Gateway, url: str, limit: int, user: str = "alice") -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        resp = await gw.client.get(url, params=params, headers=gw.auth(user))
        assert resp.status_code == 200, resp.text
        pages.append(resp.json()["items"])
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not end"


async def test_every_item_once_in_order(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    fake = FakeProcessor(kafka_settings, redis_db)
    fake.seed(put_account(redis_db, acct, posted=1000))
    payment_ids: list[str] = []
    top_up_ids: list[str] = []
    try:
        async with running_gateway(kafka_settings, redis_db) as gw:
            for i in range(7):
                if i == 3:
                    fake.psp = "failed"
                resp = await gw.client.post(
                    f"/v1/accounts/{acct}/payments",
                    json={"amount": 100 + i, "currency": "EUR", "payee": "shop"},
                    headers=gw.auth("alice", **{"Idempotency-Key": f"p{i}"}),
                )
                payment_ids.append(resp.json()["id"])
                await fake.process_one_async()
                fake.psp = "succeeded"
                if i % 3 == 0:
                    resp = await gw.client.post(
                        f"/v1/accounts/{acct}/top-ups",
                        json={"amount": 1000 + i, "currency": "EUR", "payment_method": "tok_ok"},
                        headers=gw.auth("bob", **{"Idempotency-Key": f"t{i}"}),
                    )
                    top_up_ids.append(resp.json()["id"])
                    await fake.process_one_async()
            # the processor's records are redelivered (the projector restarted before committing)
            writer(redis_db).apply_records(list(fake.emitted))

            for limit in (1, 3, 7, 200):
                pages = await _all_pages(gw, f"/v1/accounts/{acct}/payments", limit)
                assert [p["id"] for page in pages for p in page] == payment_ids, limit
                assert all(len(page) == limit for page in pages[:-1])
            statuses = [
                p["status"]
                for page in await _all_pages(gw, f"/v1/accounts/{acct}/payments", 50)
                for p in page
            ]
            assert statuses == ["succeeded"] * 3 + ["failed"] + ["succeeded"] * 3
            pages = await _all_pages(gw, f"/v1/accounts/{acct}/top-ups", 2, user="admin")
            assert [t["id"] for page in pages for t in page] == top_up_ids

            ledger = [tx for page in await _all_pages(gw, f"/v1/accounts/{acct}/ledger", 2) for tx in page]
            expected = [r for r in fake.emitted if isinstance(r, LedgerTransaction)]
            assert [tx["tx_id"] for tx in ledger] == [tx.tx_id for tx in expected]
            assert [tx["seq"] for tx in ledger] == sorted(tx["seq"] for tx in ledger)
            account = (await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("alice"))).json()
            assert 1000 + sum(tx["net"] for tx in ledger) == account["posted"]
            first = ledger[0]
            assert first["kind"] == "payment"
            assert first["net"] == -100
            assert first["postings"] == [
                {"debit": f"customer:{acct}", "credit": "clearing:psp-payouts", "amount": 100}
            ]
            default = await gw.client.get(f"/v1/accounts/{acct}/ledger", headers=gw.auth("bob"))
            assert (len(default.json()["items"]), default.json()["next_cursor"]) == (len(ledger), None)

            # an operation that expired from the read model is skipped; paging goes on past it
            r: redis.Redis = redis.Redis.from_url(redis_db)
            try:
                assert r.delete(f"op:{payment_ids[1]}") == 1
            finally:
                r.close()
            pages = await _all_pages(gw, f"/v1/accounts/{acct}/payments", 2)
            assert [len(page) for page in pages] == [1, 2, 2, 1]
            assert [p["id"] for page in pages for p in page] == payment_ids[:1] + payment_ids[2:]
    finally:
        fake.close()


async def test_several_transactions_at_one_seq(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    txs = [
        LedgerTransaction(
            tx_id=tx_id, account_id=acct, seq=seq, op_id="op", kind="adjustment", currency="EUR",
            occurred_at=1, postings=(Posting(debit="equity:funding", credit=f"customer:{acct}", amount=5),),
        )
        for seq, tx_id in ((5, "b"), (5, "a"), (5, "c"), (6, "a2"), (9, "z"))
    ]  # fmt: skip
    w = writer(redis_db)
    assert w.apply_ledger(txs) == [True] * 5
    assert w.apply_ledger(list(reversed(txs))) == [False] * 5  # redelivery: indexed once
    async with running_gateway(kafka_settings, redis_db) as gw:
        for limit in (1, 2, 4):
            pages = await _all_pages(gw, f"/v1/accounts/{acct}/ledger", limit)
            assert [tx["tx_id"] for page in pages for tx in page] == ["a", "b", "c", "a2", "z"]
    r: redis.Redis = redis.Redis.from_url(redis_db)
    try:
        assert r.zcard(f"ledger:{acct}") == 5
        assert r.hlen(f"ledgertx:{acct}") == 5
    finally:
        r.close()


async def test_bad_queries_and_access(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db) as gw:
        for kind in ("payments", "top-ups", "ledger"):
            url = f"/v1/accounts/{acct}/{kind}"
            empty = await gw.client.get(url, headers=gw.auth("alice"))
            assert (empty.status_code, empty.json()) == (200, {"items": [], "next_cursor": None})
            for params in (
                {"cursor": "garbage"},
                {"cursor": ""},
                {"limit": 0},
                {"limit": 201},
                {"limit": "x"},
            ):
                resp = await gw.client.get(url, params=params, headers=gw.auth("alice"))
                assert resp.status_code == 400, (kind, params)
                assert resp.json()["code"] == "validation_error"
                assert resp.headers["content-type"] == "application/problem+json"
            carol = await gw.client.get(url, headers=gw.auth("carol"))
            assert (carol.status_code, carol.json()["code"]) == (403, "not_a_member")
            assert (await gw.client.get(url, headers=gw.auth("admin"))).status_code == 200
            missing = await gw.client.get(f"/v1/accounts/acct_nope/{kind}", headers=gw.auth("alice"))
            assert (missing.status_code, missing.json()["code"]) == (404, "account_not_found")
            assert (await gw.client.get(url)).status_code == 401
