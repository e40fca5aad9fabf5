"""Settings of the baseline app: one frozen object built in ``main()`` (env prefix ``BASELINE_``)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Variant(StrEnum):
    LOCKED = "locked"  # the PSP is called while the transaction holds the account row lock
    UNLOCKED = "unlocked"  # hold in one transaction, PSP call outside, settle in a second


class BaselineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BASELINE_", frozen=True, extra="ignore")

    dsn: str = "postgresql://bench@127.0.0.1:5432/bench"
    psp_url: str = "http://127.0.0.1:8090"
    variant: Variant = Variant.LOCKED
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    # Connections to PostgreSQL. A request waiting for the row lock holds one, so with the PSP called
    # under the lock this bounds the requests in progress.
    pool_size: int = Field(default=32, ge=1)
    # Waiting longer than this for a row lock or a pooled connection fails the request with 503 rather than
    # queueing without bound (what a team adds after its first incident).
    lock_timeout_ms: int = Field(default=10_000, ge=1)
    psp_timeout_s: float = Field(default=10.0, gt=0)
    psp_max_connections: int = Field(default=1000, ge=1)
    principal_cache_s: float = Field(default=60.0, ge=0)  # like the gateway's API-key cache
