"""``payments seed``: create API keys (and optionally the demo account) and write a credentials file.

    payments seed --redis-url redis://127.0.0.1:6379/0 --credentials-out .devstack/credentials.json \
        [--gateway http://127.0.0.1:8080] [--psp http://127.0.0.1:8090] [--users alice,bob]

Without ``--redis-url``: ``$PAYMENTS_REDIS__URL``, else the running dev stack's (``.devstack/stack.json``).

Keys are printed once and written to the credentials file (mode 0600); Redis only keeps their hashes.
With ``--gateway`` the demo account shared by the users is opened and funded through the HTTP API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from payments.devstack.discovery import discover_settings
from payments.gateway.keys import create_api_key as create_api_key  # also imported from here
from payments.settings import RedisSettings

DEMO_FUNDING = 100_000  # minor units: EUR 1,000.00


class _SeedSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    redis: RedisSettings = RedisSettings()


async def _open_demo_account(gateway: str, admin_key: str, users: list[str], currency: str) -> str:
    async with httpx.AsyncClient(
        base_url=gateway, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    ) as client:
        resp = await client.post(
            "/v1/accounts",
            json={"currency": currency, "members": users},
            headers={"Idempotency-Key": f"seed-account-{secrets.token_hex(8)}", "Prefer": "wait=10"},
        )
        resp.raise_for_status()
        account_id = str(resp.json()["id"])
        resp = await client.post(
            f"/v1/accounts/{account_id}/adjustments",
            json={"amount": DEMO_FUNDING, "currency": currency, "reason": "demo funding"},
            headers={"Idempotency-Key": f"seed-funding-{account_id}", "Prefer": "wait=10"},
        )
        resp.raise_for_status()
        return account_id


async def seed(args: argparse.Namespace) -> dict[str, Any]:
    users = [u for u in args.users.split(",") if u]
    redis = Redis.from_url(args.redis_url)
    try:
        admin = await create_api_key(redis, args.admin_user, "admin")
        user_keys = {u: await create_api_key(redis, u, "member") for u in users}
    finally:
        await redis.aclose()
    demo_account = None
    if args.gateway:
        demo_account = await _open_demo_account(args.gateway, admin, users, args.currency)
    return {
        "gateway": args.gateway,
        "psp": args.psp,
        "admin": admin,
        "users": user_keys,
        "demo_account": demo_account,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="payments seed", description=__doc__)
    parser.add_argument("--redis-url", help="default: $PAYMENTS_REDIS__URL, else the running dev stack's")
    parser.add_argument("--credentials-out", required=True, type=Path)
    parser.add_argument("--gateway", default=None, help="open and fund the demo account through this gateway")
    parser.add_argument("--psp", default=None, help="PSP simulator URL to record in the credentials file")
    parser.add_argument("--users", default="alice,bob", help="comma-separated member user ids")
    parser.add_argument("--admin-user", default="admin")
    parser.add_argument("--currency", default="EUR")
    args = parser.parse_args(argv)
    settings, resolution = discover_settings(_SeedSettings, {"redis.url": args.redis_url})
    print(f"payments seed: {resolution.describe(settings)}", file=sys.stderr)
    args.redis_url = settings.redis.url
    try:
        creds = asyncio.run(seed(args))
    except (httpx.HTTPError, OSError, RuntimeError, ValueError) as exc:
        print(f"payments seed: {exc}", file=sys.stderr)
        return 1
    out: Path = args.credentials_out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(creds, indent=2))
    out.chmod(0o600)  # API keys: readable by this user only
    print(json.dumps(creds, indent=2))
    return 0
