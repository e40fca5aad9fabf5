"""The client's knobs: time-outs, retry budget and backoff. One frozen object, passed to the client.

Times are seconds. ``from_env()`` reads ``PAYMENTS_CLIENT_*`` variables for callers who want that; the
client itself never reads the environment.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Per attempt, connect and read; a ``Prefer: wait=N`` call adds N to the read time-out, since the
    # server holds the answer for up to N s on purpose.
    timeout_s: float = Field(default=10.0, gt=0)
    # Attempts of one logical call, the first included (1 = never retry).
    max_attempts: int = Field(default=6, ge=1, le=100)
    # Total time budget of one logical call across attempts and sleeps (plus its wait_s, if any): no
    # attempt starts, and no sleep is taken, that would end past it.
    deadline_s: float = Field(default=30.0, gt=0)
    # Full-jitter exponential backoff: sleep uniform(0, min(cap, base * 2**retry)) seconds.
    backoff_base_s: float = Field(default=0.1, gt=0)
    backoff_cap_s: float = Field(default=5.0, gt=0)
    # A server's Retry-After is honoured as a lower bound on the sleep, but never beyond this many seconds
    # (a misconfigured proxy saying "come back in an hour" must not stall the caller that long).
    max_retry_after_s: float = Field(default=30.0, ge=0)
    user_agent: str = "payments-client/1"

    @model_validator(mode="after")
    def _cap_above_base(self) -> ClientSettings:
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must be >= backoff_base_s")
        return self

    @classmethod
    def from_env(cls) -> ClientSettings:
        """The defaults, overridden by ``PAYMENTS_CLIENT_TIMEOUT_S``, ``PAYMENTS_CLIENT_MAX_ATTEMPTS``, ..."""
        return cls.model_validate(_EnvClientSettings().model_dump(exclude_none=True))


class _EnvClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_CLIENT_", extra="ignore")

    timeout_s: float | None = None
    max_attempts: int | None = None
    deadline_s: float | None = None
    backoff_base_s: float | None = None
    backoff_cap_s: float | None = None
    max_retry_after_s: float | None = None
    user_agent: str | None = None
