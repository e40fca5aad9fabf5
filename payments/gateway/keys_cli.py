"""``payments keys``: create, list, revoke and rotate API keys.

    payments keys create --user alice [--role member|admin]
    payments keys list [--user alice]
    payments keys revoke KEY_ID
    payments keys rotate KEY_ID [--grace-s 3600]

Redis is ``--redis-url``, else ``$PAYMENTS_REDIS__URL``, else the running dev stack's (``.devstack/``),
else redis://127.0.0.1:6379/0. Keys are named by their key id (``list`` shows it; any unique prefix of 8+ characters works), never by the key itself.

A new key (``create``, ``rotate``) is printed once, alone on stdout, so that it can be piped into a
secret store; everything else goes to stderr. No full key is ever printed again or logged: Redis keeps
only its sha256.

``revoke`` deletes the key: new lookups fail at once, and running gateways drop it from their principal
cache as soon as the revocation message reaches them (milliseconds), at the latest after
``PAYMENTS_PRINCIPAL_CACHE_S`` (60 s) if they missed it. ``rotate`` creates a new key for the same
principal and lets the old one work for ``--grace-s`` more seconds (default 0: revoked now).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.devstack.discovery import discover_settings
from payments.gateway.auth import Role, hash_key
from payments.gateway.keys import KeyInfo, UnknownKey, create_api_key, key_id, list_keys, revoke, rotate
from payments.settings import RedisSettings


class _KeysSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    redis: RedisSettings = RedisSettings()


def _describe(info: KeyInfo) -> str:
    expiry = "no expiry" if info.expires_in_s is None else f"expires in {info.expires_in_s:.0f}s"
    return f"{info.key_id}  {info.principal.user_id:<24} {info.principal.role.value:<6}  {expiry}"


async def _run(args: argparse.Namespace) -> int:
    redis: Redis = Redis.from_url(args.redis_url)
    try:
        if args.command == "create":
            new_key = await create_api_key(redis, args.user, args.role)
            print(f"created key {key_id(hash_key(new_key))} for {args.user} ({args.role})", file=sys.stderr)
            print(new_key)
        elif args.command == "list":
            infos = await list_keys(redis, user_id=args.user)
            print(f"{'KEY ID':<12}  {'USER':<24} {'ROLE':<6}  EXPIRY", file=sys.stderr)
            for info in infos:
                print(_describe(info))
        elif args.command == "revoke":
            info = await revoke(redis, args.key_id)
            print(f"revoked {_describe(info)}", file=sys.stderr)
        else:
            new_key, new, old = await rotate(redis, args.key_id, grace_s=args.grace_s)
            print(f"new     {_describe(new)}", file=sys.stderr)
            state = "revoked" if old.expires_in_s == 0 else "old"
            print(f"{state:<7} {_describe(old)}", file=sys.stderr)
            print(new_key)
    finally:
        await redis.aclose()
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="payments keys", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis-url", help="default: $PAYMENTS_REDIS__URL, else the running dev stack's")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="a new key for a user; printed once on stdout")
    create.add_argument("--user", required=True)
    create.add_argument("--role", default=Role.MEMBER.value, choices=[r.value for r in Role])
    listing = sub.add_parser("list", help="key ids, users, roles and expiries (never the keys)")
    listing.add_argument("--user", default=None)
    rev = sub.add_parser("revoke", help="stop a key now")
    rev.add_argument("key_id")
    rot = sub.add_parser("rotate", help="a new key for the same principal; the old one expires")
    rot.add_argument("key_id")
    rot.add_argument("--grace-s", type=float, default=0.0, help="seconds the old key keeps working (0: none)")
    args = parser.parse_args(argv)
    settings, _ = discover_settings(_KeysSettings, {"redis.url": args.redis_url})
    args.redis_url = settings.redis.url
    try:
        return asyncio.run(_run(args))
    except (UnknownKey, ValueError) as exc:
        print(f"payments keys: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        print(f"payments keys: redis unreachable ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
