"""Creating the baseline's schema and bulk-loading its API keys and accounts (``COPY``)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import asyncpg

from payments.gateway.auth import hash_key


async def create_schema(conn: asyncpg.Connection) -> None:
    await conn.execute((resources.files("bench.baseline") / "schema.sql").read_text(encoding="utf-8"))


async def load(
    conn: asyncpg.Connection,
    *,
    keys: dict[str, str],
    accounts: Sequence[tuple[str, int, tuple[str, ...]]],
    currency: str,
) -> None:
    """``keys``: user id → API key (members); ``accounts``: (id, funding in minor units, members)."""
    await conn.copy_records_to_table(
        "api_keys",
        records=[(hash_key(k), u, "member") for u, k in keys.items()],
        columns=["key_hash", "user_id", "role"],
    )
    await conn.copy_records_to_table(
        "accounts",
        records=[(a, currency, funding) for a, funding, _ in accounts],
        columns=["id", "currency", "posted"],
    )
    await conn.copy_records_to_table(
        "account_members",
        records=[(a, m) for a, _, members in accounts for m in members],
        columns=["account_id", "user_id"],
    )
    await conn.execute("ANALYZE")
