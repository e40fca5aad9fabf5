"""``POST /v1/accounts/{id}/members`` and ``DELETE /v1/accounts/{id}/members/{user}`` (admin only)."""

from __future__ import annotations

import asyncio
import re

import pytest

from payments.gateway.idempotency_keys import derive_member_command_id
from payments.schemas.commands import AddMember, RemoveMember
from payments.settings import KafkaSettings
from tests.gateway.support import (
    NOW_MS,
    FakeProcessor,
    commands,
    new_account_id,
    put_account,
    running_gateway,
)

pytestmark = pytest.mark.integration


async def test_admin_adds_and_removes_members(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db) as gw:
        added = await gw.client.post(
            f"/v1/accounts/{acct}/members", json={"user_id": "carol"}, headers=gw.auth("admin")
        )
        assert added.status_code == 202, added.text
        assert added.json() == {
            "account_id": acct,
            "user_id": "carol",
            "action": "add",
            "pending": True,
            "version": None,
        }
        removed = await gw.client.delete(f"/v1/accounts/{acct}/members/bob", headers=gw.auth("admin"))
        assert removed.status_code == 202
        assert (removed.json()["action"], removed.json()["user_id"]) == ("remove", "bob")
    add, remove = commands(kafka_settings, expect=2)
    assert isinstance(add, AddMember)
    assert isinstance(remove, RemoveMember)
    assert (add.account_id, add.user_id, add.principal, add.issued_at) == (acct, "carol", "admin", NOW_MS)
    assert (remove.account_id, remove.user_id, remove.principal) == (acct, "bob", "admin")
    for cmd in (add, remove):
        assert re.fullmatch(r"mem_[0-9a-f]{32}", cmd.command_id)
    assert add.command_id != remove.command_id


async def test_members_routes_are_admin_only(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db) as gw:
        for user in ("alice", "carol"):  # a member of the account, and a stranger
            resp = await gw.client.post(
                f"/v1/accounts/{acct}/members", json={"user_id": "dave"}, headers=gw.auth(user)
            )
            assert (resp.status_code, resp.json()["code"]) == (403, "forbidden")
            resp = await gw.client.delete(f"/v1/accounts/{acct}/members/bob", headers=gw.auth(user))
            assert (resp.status_code, resp.json()["code"]) == (403, "forbidden")
        assert (await gw.client.delete(f"/v1/accounts/{acct}/members/bob")).status_code == 401
        for unknown in ("acct_nope", "not%20an%20id"):
            resp = await gw.client.post(
                f"/v1/accounts/{unknown}/members", json={"user_id": "dave"}, headers=gw.auth("admin")
            )
            assert (resp.status_code, resp.json()["code"]) == (404, "account_not_found")
            resp = await gw.client.delete(f"/v1/accounts/{unknown}/members/bob", headers=gw.auth("admin"))
            assert (resp.status_code, resp.json()["code"]) == (404, "account_not_found")
        for body in ({"user_id": "bad id"}, {"user_id": ""}, {}, {"user_id": "x", "role": "admin"}):
            resp = await gw.client.post(f"/v1/accounts/{acct}/members", json=body, headers=gw.auth("admin"))
            assert (resp.status_code, resp.json()["code"]) == (422, "validation_error")
        resp = await gw.client.delete(f"/v1/accounts/{acct}/members/bad%20id", headers=gw.auth("admin"))
        assert (resp.status_code, resp.json()["code"]) == (422, "validation_error")
    assert commands(kafka_settings) == []


async def test_prefer_wait_until_the_read_model_shows_it(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    acct = new_account_id()
    fake = FakeProcessor(kafka_settings, redis_db)
    fake.seed(put_account(redis_db, acct))
    try:
        async with running_gateway(kafka_settings, redis_db, wait_recheck_s=30) as gw:
            hdrs = gw.auth("admin", Prefer="wait=8")
            task = asyncio.create_task(
                gw.client.post(f"/v1/accounts/{acct}/members", json={"user_id": "carol"}, headers=hdrs)
            )
            await fake.process_one_async()
            resp = await asyncio.wait_for(task, 10)
            assert resp.status_code == 200, resp.text
            assert resp.json() == {
                "account_id": acct,
                "user_id": "carol",
                "action": "add",
                "pending": False,
                "version": 2,
            }
            assert resp.headers["preference-applied"] == "wait=8"
            # carol may now read the account
            assert (await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("carol"))).status_code == 200

            # adding her again: published anyway (an earlier removal could be in flight), shown at once
            again = await gw.client.post(
                f"/v1/accounts/{acct}/members", json={"user_id": "carol"}, headers=hdrs
            )
            assert (again.status_code, again.json()["pending"]) == (200, False)
            assert await fake.process_one_async() == []  # the processor: nothing changes, no result

            task = asyncio.create_task(gw.client.delete(f"/v1/accounts/{acct}/members/carol", headers=hdrs))
            await fake.process_one_async()
            resp = await asyncio.wait_for(task, 10)
            assert (resp.status_code, resp.json()["pending"], resp.json()["version"]) == (200, False, 3)
            gone = await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("carol"))
            assert gone.status_code == 403

            # nobody answers in time: 202, still pending
            late = await gw.client.post(
                f"/v1/accounts/{acct}/members",
                json={"user_id": "dave"},
                headers=gw.auth("admin", Prefer="wait=1"),
            )
            assert (late.status_code, late.json()["pending"]) == (202, True)
    finally:
        fake.close()


async def test_optional_idempotency_key(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db) as gw:
        url = f"/v1/accounts/{acct}/members"
        hdrs = gw.auth("admin", **{"Idempotency-Key": "add-carol"})
        first = await gw.client.post(url, json={"user_id": "carol"}, headers=hdrs)
        again = await gw.client.post(url, json={"user_id": "carol"}, headers=hdrs)
        assert first.status_code == again.status_code == 202
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        other = await gw.client.post(url, json={"user_id": "dave"}, headers=hdrs)
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
        # the same key on the DELETE route is another request
        delete = await gw.client.delete(f"{url}/carol", headers=hdrs)
        assert (delete.status_code, delete.json()["code"]) == (422, "idempotency_key_reused")
    published = commands(kafka_settings, expect=1)
    assert [c.command_id for c in published] == [derive_member_command_id("admin", acct, "add-carol")]
