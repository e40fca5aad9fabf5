"""Start-up settings of the PSP simulator: one frozen object built in ``main()`` and passed down.

Environment variables use the ``PSP_SIM_`` prefix (``PSP_SIM_PORT=8090``); command-line flags override them.
Everything that can change at run time (fault rates, latency) starts from these values and lives in the
simulator's fault configuration afterwards; ``DELETE /_sim/faults`` returns to them.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from payments.psp_sim.errors import InvalidSecret
from payments.psp_sim.signing import decode_secret


class PspSimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PSP_SIM_", frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    # None picks a random seed at start and logs it, so any run can be reproduced afterwards.
    seed: int | None = None

    # Default response latency: lognormal with this median, clipped at max (about 1% of requests hit it).
    latency_median_ms: float = Field(default=1500.0, ge=0, allow_inf_nan=False)
    latency_max_ms: float = Field(default=3000.0, ge=0, allow_inf_nan=False)
    # How long a timeout_after_commit response hangs: longer than any sane client time-out.
    timeout_hang_s: float = Field(default=30.0, ge=0, allow_inf_nan=False)
    rate_limit_retry_after_s: int = Field(default=1, ge=0)

    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=6, ge=1)
    # Retry n waits backoff * 2**(n-1) seconds, capped, times a jitter factor in [0.5, 1).
    webhook_backoff_s: float = Field(default=1.0, ge=0)
    webhook_backoff_max_s: float = Field(default=60.0, ge=0)
    # Concurrent deliveries. Above 1, events due at the same moment may overtake each other, as with real PSPs.
    webhook_concurrency: int = Field(default=8, ge=1)
    delivery_log_size: int = Field(default=10_000, ge=0)

    log_level: str = "info"
    # Bounds shutdown while timeout_after_commit responses are still hanging.
    graceful_shutdown_s: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.latency_max_ms < self.latency_median_ms:
            raise ValueError("latency_max_ms must be >= latency_median_ms")
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("webhook_url needs webhook_secret (whsec_<base64>)")
        if self.webhook_secret is not None:
            try:
                decode_secret(self.webhook_secret.get_secret_value())
            except InvalidSecret as exc:
                raise ValueError(exc.message) from exc
        return self
