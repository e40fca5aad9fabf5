"""API-key lifecycle in Redis: create, list, revoke, rotate (``payments keys``; the CLI is ``keys_cli``).

Storage is what the gateway reads (``payments.gateway.auth``): ``apikey:<sha256 hex of the key>`` → the
principal's JSON. Nothing else is stored, so there is one source of truth and no metadata to drift:

- a key is named by its **key id**, the first 12 hex characters of that hash (enough to tell keys apart,
  useless to authenticate with); commands accept any unique prefix of at least 8 characters;
- a key in its rotation grace period is the same record with a Redis TTL: Redis deletes it when the
  grace ends, so it stops working without anybody acting;
- revoking deletes the record and announces the hash on :data:`REVOKED_CHANNEL`, so running gateways
  drop the principal from their cache at once (see ``auth.RevocationListener`` for the bound).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from pydantic import ValidationError
from redis.asyncio import Redis

from payments.gateway.auth import KEY_PREFIX, REVOKED_CHANNEL, Principal, Role, hash_key

KEY_ID_CHARS = 12
MIN_KEY_ID_PREFIX = 8
_RECORD_PREFIX = "apikey:"


class UnknownKey(ValueError):
    """A key id that matches no key, or more than one."""


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    principal: Principal
    expires_in_s: float | None  # None: no expiry; else seconds until Redis deletes it (grace period)


def key_id(digest: str) -> str:
    return digest[:KEY_ID_CHARS]


async def create_api_key(redis: Redis, user_id: str, role: str) -> str:
    """Create a random API key for ``user_id`` with ``role`` ("admin" | "member") and return it.

    Only the key's sha256 is stored; the returned key cannot be recovered later.
    """
    principal = Principal(user_id=user_id, role=Role(role))  # validates both before anything is written
    api_key = KEY_PREFIX + secrets.token_urlsafe(24)
    # NX: a (practically impossible) collision must not silently rebind another user's key.
    if not await redis.set(_RECORD_PREFIX + hash_key(api_key), principal.model_dump_json(), nx=True):
        raise RuntimeError("API key collision; try again")
    return api_key


async def _digests(redis: Redis) -> list[str]:
    # SCAN, not KEYS: an operator's tool must not block a production Redis.
    return sorted(
        [bytes(k).decode()[len(_RECORD_PREFIX) :] async for k in redis.scan_iter(_RECORD_PREFIX + "*", 1000)]
    )


async def _info(redis: Redis, digest: str) -> KeyInfo | None:
    pipe = redis.pipeline(transaction=False)
    pipe.get(_RECORD_PREFIX + digest)
    pipe.pttl(_RECORD_PREFIX + digest)
    raw, pttl = await pipe.execute()
    if raw is None:
        return None
    try:
        principal = Principal.model_validate_json(raw)
    except ValidationError:
        return None  # not a record the gateway would accept either
    return KeyInfo(key_id(digest), principal, pttl / 1000 if pttl >= 0 else None)


async def list_keys(redis: Redis, *, user_id: str | None = None) -> list[KeyInfo]:
    out = []
    for digest in await _digests(redis):
        info = await _info(redis, digest)
        if info is not None and (user_id is None or info.principal.user_id == user_id):
            out.append(info)
    return out


async def resolve_key_id(redis: Redis, prefix: str) -> str:
    """The full hash of the one key whose id starts with ``prefix``."""
    prefix = prefix.strip().lower()
    if len(prefix) < MIN_KEY_ID_PREFIX or any(c not in "0123456789abcdef" for c in prefix):
        raise UnknownKey(
            f"a key id is at least {MIN_KEY_ID_PREFIX} hex characters (see 'payments keys list')"
        )
    matches = [d for d in await _digests(redis) if d.startswith(prefix)]
    if not matches:
        raise UnknownKey(f"no key with id {prefix}")
    if len(matches) > 1:
        raise UnknownKey(f"key id {prefix} is ambiguous ({len(matches)} keys); give more characters")
    return matches[0]


async def revoke(redis: Redis, prefix: str) -> KeyInfo:
    """Delete the key now and tell running gateways to forget it."""
    digest = await resolve_key_id(redis, prefix)
    info = await _info(redis, digest)
    if info is None:
        raise UnknownKey(f"no key with id {prefix}")
    await redis.delete(_RECORD_PREFIX + digest)
    await redis.publish(REVOKED_CHANNEL, digest)
    return info


async def rotate(redis: Redis, prefix: str, *, grace_s: float) -> tuple[str, KeyInfo, KeyInfo]:
    """A new key for the same principal; the old one keeps working for ``grace_s`` (0: revoked now).

    Returns (the new key, its info, the old key's info after the change). A grace never extends an
    expiry the old key already had."""
    if grace_s < 0:
        raise ValueError("grace must be >= 0 s")
    digest = await resolve_key_id(redis, prefix)
    old = await _info(redis, digest)
    if old is None:
        raise UnknownKey(f"no key with id {prefix}")
    new_key = await create_api_key(redis, old.principal.user_id, old.principal.role.value)
    grace_ms = int(grace_s * 1000)
    if grace_ms <= 0:
        await redis.delete(_RECORD_PREFIX + digest)
    elif old.expires_in_s is None or old.expires_in_s * 1000 > grace_ms:
        await redis.pexpire(_RECORD_PREFIX + digest, grace_ms)
    # Either way gateways must re-read the old key: gone, or now carrying the expiry they cache up to.
    await redis.publish(REVOKED_CHANNEL, digest)
    new = KeyInfo(key_id(hash_key(new_key)), old.principal, None)
    after = await _info(redis, digest) or KeyInfo(old.key_id, old.principal, 0.0)
    return new_key, new, after
