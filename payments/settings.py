"""Settings shared by every service.

Each service builds one frozen settings object in its ``main()`` and passes it down; nothing reads the
environment anywhere else. Environment variables use the ``PAYMENTS_`` prefix with ``__`` as the nested
delimiter, e.g. ``PAYMENTS_KAFKA__BOOTSTRAP=127.0.0.1:9092``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class TopicNames(BaseModel):
    model_config = ConfigDict(frozen=True)

    commands: str = "payments.commands"
    state: str = "payments.processor-state"
    results: str = "payments.results"
    ledger: str = "payments.ledger"
    psp_requests: str = "payments.psp-requests"
    # The reconciler's changelog of non-terminal operations (compacted, partitioned like results).
    reconciler_state: str = "payments.reconciler-state"
    # Settlement mismatches and settlement runs, keyed by a deterministic id (compacted: one per id).
    discrepancies: str = "payments.discrepancies"

    def all(self) -> list[str]:
        return [
            self.commands,
            self.state,
            self.results,
            self.ledger,
            self.psp_requests,
            self.reconciler_state,
            self.discrepancies,
        ]

    def compacted(self) -> frozenset[str]:
        """Topics that keep the latest record per key rather than a time window."""
        return frozenset({self.state, self.reconciler_state, self.discrepancies})


class KafkaSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    bootstrap: str = "127.0.0.1:9092"
    partitions: int = Field(default=64, ge=1)
    topics: TopicNames = TopicNames()
    # Fetch long-polling of the services' consumers: the broker answers a fetch once this many bytes are
    # there, or after this wait (ms). librdkafka's defaults (1 byte, 500 ms) measured best here: the broker
    # parks an idle consumer's fetch until data arrives, whereas 16 KiB / 10 ms made every consumer fetch
    # 100 times a second at low load (a-hot capacity 270/s instead of 400/s, 5.5-6.8 instead of 4.7 CPU ms
    # per payment, side by side; bench/README.md). Tunable for larger deployments.
    fetch_min_bytes: int = Field(default=1, ge=1)
    fetch_wait_max_ms: int = Field(default=500, ge=1)

    def fetch_config(self) -> dict[str, str | int | bool]:
        """The long-poll properties of the services' streaming consumers (not of one-off readers)."""
        return {"fetch.min.bytes": self.fetch_min_bytes, "fetch.wait.max.ms": self.fetch_wait_max_ms}

    def client_config(self) -> dict[str, str | int | bool]:
        """Base librdkafka config for producers. murmur2_random matches the Java client's key->partition
        function, which every producer must share or the single-writer-per-account guarantee silently breaks."""
        return {**self.consumer_config(), "partitioner": "murmur2_random"}

    def consumer_config(self) -> dict[str, str | int | bool]:
        """Base librdkafka config for consumers and admin clients (no producer-only properties)."""
        return {"bootstrap.servers": self.bootstrap}


def kafka_env(kafka: KafkaSettings) -> dict[str, str]:
    """The environment that points a service subprocess at ``kafka``'s broker and topic names."""
    env = {"PAYMENTS_KAFKA__BOOTSTRAP": kafka.bootstrap, "PAYMENTS_KAFKA__PARTITIONS": str(kafka.partitions)}
    for name, topic in kafka.topics.model_dump().items():
        env[f"PAYMENTS_KAFKA__TOPICS__{name.upper()}"] = topic
    return env


class RedisSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str = "redis://127.0.0.1:6379/0"


class _HasKafka(Protocol):
    """A service's settings object: frozen pydantic settings with a ``kafka`` section."""

    @property
    def kafka(self) -> KafkaSettings: ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...


S = TypeVar("S", bound=_HasKafka)


def with_bootstrap(settings: S, bootstrap: str | None) -> S:
    """``settings`` with a ``--bootstrap`` flag applied: a flag overrides the environment."""
    if not bootstrap:
        return settings
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"bootstrap": bootstrap})})
