"""Pure auth helpers. No I/O."""

from __future__ import annotations

import hashlib

from payments.gateway.auth import apikey_redis_key, hash_key


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("pk_abc") == hashlib.sha256(b"pk_abc").hexdigest()
    assert apikey_redis_key("pk_abc") == "apikey:" + hash_key("pk_abc")
