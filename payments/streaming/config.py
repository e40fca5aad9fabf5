"""librdkafka configuration for every client this project makes, built in one place.

Each builder starts from ``KafkaSettings`` (bootstrap; producers also ``partitioner=murmur2_random``, which
every producer of a topic must share or an account's records stop landing on its single writer's
partition) and the settings every client of that kind here needs; ``overrides`` (librdkafka property
names, dots and all: pass them as a mapping) come last and win.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payments.settings import KafkaSettings

Config = dict[str, Any]


def consumer_config(kafka: KafkaSettings, group: str, overrides: Mapping[str, Any] | None = None) -> Config:
    """A consumer that sees committed records only and commits nothing unless told to (offsets are part of
    each consumer's own exactly-once or at-least-once protocol, never librdkafka's timer)."""
    return {
        **kafka.consumer_config(),
        **kafka.fetch_config(),
        "group.id": group,
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        **(overrides or {}),
    }


def producer_config(kafka: KafkaSettings, overrides: Mapping[str, Any] | None = None) -> Config:
    """An idempotent producer (no duplicates or reordering from librdkafka's own retries) whose records
    are durable once acknowledged (acks=all)."""
    return {**kafka.client_config(), "enable.idempotence": True, "acks": "all", **(overrides or {})}


def transactional_config(
    kafka: KafkaSettings, transactional_id: str, overrides: Mapping[str, Any] | None = None
) -> Config:
    """An idempotent producer under a fixed ``transactional.id``: a second instance fences the first."""
    return producer_config(kafka, {"transactional.id": transactional_id, **(overrides or {})})


def admin_config(kafka: KafkaSettings, overrides: Mapping[str, Any] | None = None) -> Config:
    return {**kafka.consumer_config(), **(overrides or {})}
