"""API keys can be revoked and rotated (``payments keys``), against the real Redis and a running gateway:
revocation reaches a gateway's principal cache through pub/sub, a rotated key stops at the end of its grace
even if cached, and no full key is printed twice or logged."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest
from redis.asyncio import Redis

from payments.gateway.auth import Authenticator, RevocationListener, hash_key
from payments.gateway.errors import GatewayError
from payments.gateway.keys import UnknownKey, create_api_key, key_id, list_keys, revoke, rotate
from payments.gateway.keys_cli import main
from payments.settings import KafkaSettings
from tests.gateway.support import Gateway, new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration


async def _status_until(gw: Gateway, acct: str, key: str, want: int, within_s: float) -> float:
    """Seconds until GET answers ``want`` with ``key``; fails after ``within_s``."""
    started = time.monotonic()
    while True:
        resp = await gw.client.get(f"/v1/accounts/{acct}", headers={"Authorization": f"Bearer {key}"})
        if resp.status_code == want:
            return time.monotonic() - started
        assert time.monotonic() - started < within_s, (resp.status_code, resp.text)
        await asyncio.sleep(0.02)


async def test_revoke_reaches_a_running_gateways_cache_at_once(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    # An hour of principal cache: only the revocation message can make the gateway forget the key.
    async with running_gateway(kafka_settings, redis_db, principal_cache_s=3600) as gw:
        key = gw.keys["alice"]
        assert await _status_until(gw, acct, key, 200, 1) < 1  # cached now
        r: Redis = Redis.from_url(redis_db)
        try:
            info = await revoke(r, key_id(hash_key(key)))
            assert info.principal.user_id == "alice"
            assert await _status_until(gw, acct, key, 401, 2) < 2
            # others are untouched
            assert await _status_until(gw, acct, gw.keys["bob"], 200, 1) < 1
            with pytest.raises(UnknownKey):
                await revoke(r, key_id(hash_key(key)))
        finally:
            await r.aclose()


async def test_rotate_gives_a_grace_then_the_old_key_stops(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(
        kafka_settings, redis_db, principal_cache_s=3600, principal_stale_s=3600
    ) as gw:
        old = gw.keys["alice"]
        assert await _status_until(gw, acct, old, 200, 1) < 1
        r: Redis = Redis.from_url(redis_db)
        try:
            new, new_info, old_info = await rotate(r, key_id(hash_key(old)), grace_s=1.5)
        finally:
            await r.aclose()
        assert new != old
        assert new_info.principal == old_info.principal
        assert old_info.expires_in_s is not None
        assert 0 < old_info.expires_in_s <= 1.5
        assert await _status_until(gw, acct, new, 200, 1) < 1
        assert await _status_until(gw, acct, old, 200, 0.5) < 0.5  # still in its grace
        waited = await _status_until(gw, acct, old, 401, 4)
        assert 0.5 < waited < 4  # at the end of the grace, despite the hour of cache
        assert await _status_until(gw, acct, new, 200, 1) < 1


async def test_rotate_without_grace_revokes_the_old_key(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db, principal_cache_s=3600) as gw:
        old = gw.keys["bob"]
        assert await _status_until(gw, acct, old, 200, 1) < 1
        r: Redis = Redis.from_url(redis_db)
        try:
            new, _, after = await rotate(r, key_id(hash_key(old)), grace_s=0)
            assert after.expires_in_s == 0
            assert [i.key_id for i in await list_keys(r, user_id="bob")] == [key_id(hash_key(new))]
        finally:
            await r.aclose()
        assert await _status_until(gw, acct, old, 401, 2) < 2
        assert await _status_until(gw, acct, new, 200, 1) < 1


async def test_a_missed_revocation_is_bounded_by_the_principal_cache(redis_db: str) -> None:
    # Pub/sub keeps nothing: a gateway that was not subscribed when the revocation was announced learns of it
    # when its cache entry ages out (principal_cache_s), the documented upper bound.
    r: Redis = Redis.from_url(redis_db)
    auth = Authenticator(r, fresh_s=0.5, stale_s=3600)
    listener = RevocationListener(r, auth)
    try:
        key = await create_api_key(r, "dave", "member")
        await auth.authenticate(key)
        await revoke(r, key_id(hash_key(key)))  # announced while nobody listened
        await listener.start()
        assert (await auth.authenticate(key)).user_id == "dave"  # still cached
        await asyncio.sleep(0.6)
        with pytest.raises(GatewayError):
            await auth.authenticate(key)
        # once subscribed, the next revocation is seen at once despite an hour of cache
        auth_long = Authenticator(r, fresh_s=3600, stale_s=3600)
        listener_long = RevocationListener(r, auth_long)
        await listener_long.start()
        try:
            for _ in range(100):
                if listener_long.subscribed:
                    break
                await asyncio.sleep(0.02)
            other = await create_api_key(r, "erin", "member")
            await auth_long.authenticate(other)
            await revoke(r, key_id(hash_key(other)))
            for _ in range(100):
                try:
                    await auth_long.authenticate(other)
                except GatewayError:
                    break
                await asyncio.sleep(0.02)
            else:
                pytest.fail("the revocation message did not reach the cache within 2 s")
        finally:
            await listener_long.stop()
    finally:
        await listener.stop()
        await r.aclose()


def test_cli_prints_a_new_key_once_and_never_again(
    redis_db: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert main(["--redis-url", redis_db, "create", "--user", "erin", "--role", "admin"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert re.fullmatch(r"pk_[A-Za-z0-9_-]{32}", key)
    kid = key_id(hash_key(key))
    assert kid in err
    assert key not in err

    assert main(["--redis-url", redis_db, "list", "--user", "erin"]) == 0
    out, err = capsys.readouterr()
    assert kid in out
    assert "erin" in out
    assert "admin" in out
    assert "no expiry" in out
    assert key not in out + err

    assert main(["--redis-url", redis_db, "rotate", kid[:8], "--grace-s", "600"]) == 0
    out, err = capsys.readouterr()
    new_key = out.strip()
    assert new_key.startswith("pk_")
    assert new_key != key
    assert key not in out + err
    assert new_key not in err

    assert main(["--redis-url", redis_db, "list"]) == 0
    out, _ = capsys.readouterr()
    assert re.search(rf"{kid}\s+erin\s+admin\s+expires in (599|600)s", out), out
    assert key_id(hash_key(new_key)) in out

    assert main(["--redis-url", redis_db, "revoke", kid]) == 0
    out, err = capsys.readouterr()
    assert "revoked" in err
    assert kid in err
    assert main(["--redis-url", redis_db, "revoke", kid]) == 2  # already gone
    assert main(["--redis-url", redis_db, "revoke", "abc"]) == 2  # too short to name a key
    capsys.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert key not in logged
    assert new_key not in logged


def test_cli_takes_redis_from_the_environment(
    redis_db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMENTS_DEVSTACK_DIR", "off")
    monkeypatch.setenv("PAYMENTS_REDIS__URL", redis_db)
    assert main(["create", "--user", "frank"]) == 0
    key = capsys.readouterr().out.strip()
    assert main(["list", "--user", "frank"]) == 0
    assert key_id(hash_key(key)) in capsys.readouterr().out
