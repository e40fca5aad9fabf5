"""Settings of the projector: one frozen object, built in its ``main()`` (``PAYMENTS_`` prefix, ``__`` nesting)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from payments.settings import KafkaSettings, RedisSettings

_ENV = SettingsConfigDict(
    env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True, extra="ignore", hide_input_in_errors=True
)


class ProjectorSettings(BaseSettings):
    model_config = _ENV

    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    group_id: str = "payments-projector"
    log_level: str = "INFO"
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=0, ge=0, le=65535, description="0 = any free port (logged at start)")
    batch_max_records: int = Field(default=500, ge=1)
    # consume() waits this long (s) for a full batch unless one fills sooner, so it is a floor under every
    # `Prefer: wait` answer's latency: 0.2 s cost ~120 ms at the median (bench/README.md, capacity).
    poll_timeout_s: float = Field(default=0.05, gt=0)
    # Operations are dropped from the read model this long after their last change; None keeps them forever.
    operation_retention_s: int | None = Field(default=30 * 24 * 3600, ge=60)
    session_timeout_ms: int = Field(default=10_000, ge=3_000)
    redis_timeout_s: float = Field(default=2.0, gt=0)
    # Readiness fails if the consume loop has not completed a poll for this long (s).
    stall_after_s: float = Field(default=30.0, gt=0)
    # With no batch to write, check this often (s) that Redis still holds the read model (epoch and marks):
    # bounds how long an idle projector takes to notice that Redis lost it. Every batch checks anyway.
    check_interval_s: float = Field(default=1.0, gt=0)
