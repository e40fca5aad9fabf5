"""Settings of the gateway: one frozen object per service, built in its ``main()``.

Environment variables use the ``PAYMENTS_`` prefix and ``__`` for nesting, e.g.
``PAYMENTS_REDIS__URL=redis://127.0.0.1:6379/0`` or ``PAYMENTS_IDEMPOTENCY_RETENTION_S=3600``. Lists are
JSON: ``PAYMENTS_WEBHOOK_SECRETS='["whsec_new...", "whsec_old..."]'``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from payments.settings import KafkaSettings, RedisSettings
from payments.standard_webhooks import DEFAULT_TOLERANCE_S, InvalidSecret, decode_secret

Environment = Literal["production", "development"]

# The production profile's per-principal POST limit: far above a person's checkout clicks or a merchant
# backend's steady rate per API key, low enough that one runaway client cannot take a gateway's capacity.
PRODUCTION_RATE_LIMIT_PER_S = 100.0
PRODUCTION_RATE_LIMIT_BURST = 200
DEV_RATE_LIMIT_BURST = 50

# hide_input_in_errors: a malformed setting must not print secrets (webhook secrets) into logs.
_ENV = SettingsConfigDict(
    env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True, extra="ignore", hide_input_in_errors=True
)


class GatewaySettings(BaseSettings):
    model_config = _ENV

    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)

    # A completed idempotent response is kept this long after it was stored (the documented 24 h).
    idempotency_retention_s: int = Field(default=24 * 3600, ge=60)
    # How long a claimed key stays "in flight" if the gateway dies before answering; afterwards a retry may
    # claim it again, which is safe because the processor dedupes on the deterministic operation id.
    inflight_lease_s: float = Field(default=30.0, gt=0)
    # Upper bound of ``Prefer: wait=N`` (RFC 7240); larger values are clamped.
    max_prefer_wait_s: float = Field(default=10.0, ge=0)
    # ``POST /v1/accounts`` waits this long for the processor's ``account_opened`` before answering 202.
    account_open_wait_s: float = Field(default=3.0, ge=0)
    # librdkafka ``message.timeout.ms``: a publish that is not acknowledged by all in-sync replicas within
    # this bound fails and the client gets 503 (a retry is safe: ids are deterministic).
    publish_timeout_ms: int = Field(default=10_000, ge=100)
    # Waiters re-read the read model at this interval even without a pub/sub notification, which bounds the
    # cost of a notification lost while the pub/sub connection was reconnecting.
    wait_recheck_s: float = Field(default=1.0, gt=0)
    # API-key principals are cached in memory: fresh for ``principal_cache_s`` (so revocation takes effect
    # within that time) and served stale up to ``principal_stale_s`` while Redis is unreachable.
    principal_cache_s: float = Field(default=60.0, ge=0)
    principal_stale_s: float = Field(default=600.0, ge=0)
    # Socket timeouts towards Redis; short, because a slow Redis must tip us into degraded mode quickly.
    redis_timeout_s: float = Field(default=1.0, gt=0)
    # HTTP keep-alive idle time-out (s); see gateway.main for why it must exceed the clients' own.
    keep_alive_s: int = Field(default=75, ge=1)
    retry_after_s: int = Field(default=1, ge=1)
    # Worker processes serving the port (``payments gateway``), each with its own event loop, Redis pool and
    # Kafka producer; None = one per core (``os.cpu_count()``). Nothing depends on which worker answers:
    # idempotency records, rate-limit buckets and the read model live in Redis.
    workers: int | None = Field(default=None, ge=1)
    # A new payment or top-up repeating the principal, account, amount, currency and payee/card token of one
    # made under another Idempotency-Key within this window (s) is counted and answered with a
    # ``Payments-Warning`` header (a client making a fresh key per retry); never refused. 0 = off.
    fresh_key_window_s: float = Field(default=10.0, ge=0)
    # Send the admissions (one Lua evaluation each) that concurrent requests issue in the same event-loop
    # tick as one Redis pipeline (``payments.gateway.redis_batch``) rather than one by one.
    coalesce_redis_calls: bool = True

    # PSP webhooks (Standard Webhooks): every ``whsec_<base64>`` secret currently accepted. Several during
    # a rotation: add the new one, let the PSP switch, then drop the old one. Empty = every webhook is
    # rejected with 400 (and a warning is logged at start).
    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    # How far ``webhook-timestamp`` may be from our clock, either way (s): bounds replay of a captured call.
    webhook_tolerance_s: int = Field(default=DEFAULT_TOLERANCE_S, ge=1)
    # A published ``webhook-id`` is remembered this long (s) so PSP retries are answered without a second
    # publish. It only saves work: outcomes are applied monotonically, so a duplicate is harmless anyway.
    webhook_dedupe_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)

    # The deployment profile (``PAYMENTS_ENV``). Unset means production, so a forgotten variable errs on the
    # safe side; ``payments up``, the tests and the benchmarks say ``development`` explicitly.
    env: Environment = "production"
    # Per-principal token bucket for POSTs (429 with Retry-After past it), in requests/s and tokens. Unset,
    # they follow the profile: production 100/s with a burst of 200, development off. 0 turns the limiter
    # off explicitly (stored as None = off).
    rate_limit_per_s: float | None = Field(default=None, ge=0)
    rate_limit_burst: int = Field(default=DEV_RATE_LIMIT_BURST, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        # Before validation, on the merged input (arguments and environment), so "not given" can be told
        # apart from "given": only values nobody set follow the profile.
        if not isinstance(data, dict):
            return data
        out = dict(data)
        production = out.get("env", "production") == "production"
        if out.get("rate_limit_per_s") is None:
            out["rate_limit_per_s"] = PRODUCTION_RATE_LIMIT_PER_S if production else None
        elif float(out["rate_limit_per_s"]) == 0:
            out["rate_limit_per_s"] = None
        if production and "rate_limit_burst" not in out:
            out["rate_limit_burst"] = PRODUCTION_RATE_LIMIT_BURST
        return out

    @field_validator("webhook_secrets")
    @classmethod
    def _secrets_are_whsec(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        for secret in secrets:
            try:
                decode_secret(secret.get_secret_value())
            except InvalidSecret as exc:
                raise ValueError(f"webhook_secrets: {exc}") from exc  # never echo the secret itself
        return secrets

    @model_validator(mode="after")
    def _lease_outlives_the_request(self) -> GatewaySettings:
        # The lease must cover the slowest request (publish time-out + longest wait), or a second request
        # could claim the key while the first is still working on it.
        slowest = self.publish_timeout_ms / 1000 + max(self.max_prefer_wait_s, self.account_open_wait_s)
        if self.inflight_lease_s <= slowest:
            raise ValueError(f"inflight_lease_s must exceed publish time-out + max wait ({slowest:.1f}s)")
        return self
