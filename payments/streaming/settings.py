"""Tuning of the exactly-once runtime. Units are in the names."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RuntimeSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    group_id: str = "payments-processor"
    # Stable per instance: "<service>-<ordinal>". init_transactions() with it fences the previous incarnation.
    transactional_id: str = "payments-processor-0"
    batch_max_records: int = Field(default=500, ge=1)
    poll_timeout_s: float = Field(default=0.05, gt=0)
    # Must exceed batch time + commit time, or the coordinator aborts a healthy transaction.
    transaction_timeout_ms: int = Field(default=30_000, ge=1_000)
    # Must exceed batch time + restore time (restore runs inside the assign callback).
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    session_timeout_ms: int = Field(default=10_000, ge=3_000)
    restore_timeout_s: float = Field(default=120.0, gt=0)
    commit_retries: int = Field(default=10, ge=1)
    linger_ms: int = Field(default=5, ge=0)
    # The timeout given to send_offsets_to_transaction / commit / abort; a call still blocked
    # stuck_margin_s past it ends the process (watchdog.py).
    call_timeout_s: float = Field(default=30.0, gt=0)
    stuck_margin_s: float = Field(default=15.0, gt=0)
    # With a pruner (the processor's retention of ended operations), how often it runs between batches
    # and how many keys one pruning transaction deletes at most (the rest wait for the next round).
    prune_interval_s: float = Field(default=60.0, gt=0)
    prune_max_keys: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _timeouts_are_ordered(self) -> RuntimeSettings:
        if self.transaction_timeout_ms >= self.max_poll_interval_ms:
            raise ValueError("transaction_timeout_ms must be below max_poll_interval_ms")
        return self


def consumer_base(client_config: dict[str, str | int | bool]) -> dict[str, str | int | bool]:
    """The shared client config minus producer-only properties, which librdkafka consumers warn about."""
    return {k: v for k, v in client_config.items() if k != "partitioner"}
