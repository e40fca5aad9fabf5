"""The accounts, users and API keys both systems are loaded with, identically. Deterministic but for the
keys (random, like real ones)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from payments.gateway.auth import KEY_PREFIX

CURRENCY = "EUR"
# Funding in minor units: enough that no payment of the run is declined for funds (amounts are <= 5,000).
HOT_FUNDING = 10**13
ACCOUNT_FUNDING = 10**9
HOT_ACCOUNT = "acct_bench_hot"


def account_id(i: int) -> str:
    return f"acct_bench_{i:06d}"


def user_id(i: int) -> str:
    return f"user_{i:03d}"


@dataclass(frozen=True)
class World:
    accounts: int  # the uniform/Zipf population; the hot account comes on top
    users: int  # members of the population's accounts
    hot_users: int  # members of the hot account
    keys: dict[str, str]  # user id -> API key

    @staticmethod
    def create(accounts: int, users: int, hot_users: int) -> World:
        ids = {user_id(i) for i in range(max(users, hot_users))}
        return World(
            accounts, users, hot_users, {u: KEY_PREFIX + secrets.token_urlsafe(24) for u in sorted(ids)}
        )

    def members(self, i: int) -> tuple[str, str]:
        """Account ``i`` is shared by two users, each of whom shares another account with a neighbour."""
        return user_id(i % self.users), user_id((i + 1) % self.users)

    @property
    def hot_members(self) -> tuple[str, ...]:
        return tuple(user_id(i) for i in range(self.hot_users))

    def all_accounts(self) -> list[tuple[str, int, tuple[str, ...]]]:
        """(account id, funding, members) of every account, the hot one first."""
        out = [(HOT_ACCOUNT, HOT_FUNDING, self.hot_members)]
        out += [(account_id(i), ACCOUNT_FUNDING, self.members(i)) for i in range(self.accounts)]
        return out
