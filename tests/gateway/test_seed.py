"""``payments seed`` and ``create_api_key`` against the real Redis."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import cast

import pytest
import redis
from redis.asyncio import Redis

from payments.gateway.auth import Authenticator, Principal, Role, hash_key
from payments.gateway.seed import create_api_key, main

pytestmark = pytest.mark.integration


async def test_create_api_key_stores_only_the_hash(redis_db: str) -> None:
    r: Redis = Redis.from_url(redis_db)
    try:
        key = await create_api_key(r, "alice", "member")
        assert key.startswith("pk_")
        assert len(key) >= 32
        assert [k.decode() for k in await r.keys("*")] == [f"apikey:{hash_key(key)}"]
        auth = Authenticator(r, fresh_s=60, stale_s=600)
        assert await auth.authenticate(key) == Principal(user_id="alice", role=Role.MEMBER)
        with pytest.raises(ValueError, match="superuser"):
            await create_api_key(r, "bob", "superuser")
    finally:
        await r.aclose()


def test_seed_main_writes_credentials(redis_db: str, tmp_path: Path) -> None:
    out = tmp_path / "creds" / "credentials.json"
    assert main(["--redis-url", redis_db, "--credentials-out", str(out), "--psp", "http://psp"]) == 0
    creds = json.loads(out.read_text())
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert set(creds["users"]) == {"alice", "bob"}
    assert creds["psp"] == "http://psp"
    assert creds["demo_account"] is None  # no --gateway given
    r: redis.Redis = redis.Redis.from_url(redis_db)
    try:
        stored = cast("bytes | None", r.get(f"apikey:{hash_key(creds['admin'])}"))
        assert stored is not None
        assert json.loads(stored) == {"user_id": "admin", "role": "admin"}
    finally:
        r.close()
