"""Settings of ``payments fulfillment-example``: one frozen object built in ``main()``.

Environment variables use the ``PAYMENTS_`` prefix and ``__`` for nesting, e.g. ``PAYMENTS_DB_PATH``,
``PAYMENTS_GAP_POLICY=baseline``, ``PAYMENTS_KAFKA__BOOTSTRAP``, ``PAYMENTS_KAFKA__TOPICS__RESULTS``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from payments.fulfillment.apply import GapPolicy
from payments.settings import KafkaSettings


class FulfillmentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True)

    kafka: KafkaSettings = KafkaSettings()
    # The SQLite file holding effects, per-account progress and Kafka offsets (created if missing).
    db_path: str = "fulfillment.sqlite3"
    # Names the consumer group (partition sharing between instances, lag monitoring). Positions come from
    # the store, never from the group's committed offsets.
    group_id: str = "payments-fulfillment-example"
    gap_policy: GapPolicy = GapPolicy.STOP
    # Records per store transaction: larger batches amortise the fsync of each commit.
    batch_max_records: int = Field(default=500, ge=1, le=10_000)
    poll_timeout_s: float = Field(default=0.2, gt=0)
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    # Waiting for another instance's write lock on the shared SQLite file, in s.
    db_busy_timeout_s: float = Field(default=30.0, gt=0)
    # /readyz turns false when the loop has not polled for this long (stuck store or consumer), in s.
    stall_after_s: float = Field(default=30.0, gt=0)
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=0, ge=0)
    log_level: str = "INFO"
