"""Create the payment topics on a broker: idempotent, and checked against the settings afterwards.

Every topic gets ``settings.partitions`` partitions. That number is part of the routing contract: the
gateway computes a key's partition with murmur2 modulo this count (see ``murmur2.py``), so an existing topic
with another count is an error here, never silently accepted.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException

# The documented import path; confluent-kafka's own type hints re-export these without marking them public.
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType  # type: ignore[attr-defined]

from payments.devstack.errors import DevstackError
from payments.settings import KafkaSettings, TopicNames

_LOG = logging.getLogger(__name__)

# The processor's state changelog: only the latest value per key matters. Compaction starts once 10% of
# the log is superseded, and a segment rolls at least every 10 min (compaction never touches the active
# segment, so this bounds how long superseded state stays on disk).
STATE_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.1",
    "segment.ms": str(10 * 60 * 1000),
}
# Commands, results, ledger and PSP requests are the audit trail: kept 30 days (in ms), not compacted.
EVENT_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}


def topic_config(name: str, topics: TopicNames) -> dict[str, str]:
    return dict(STATE_TOPIC_CONFIG if name in topics.compacted() else EVENT_TOPIC_CONFIG)


def create_topics(bootstrap: str, settings: KafkaSettings, *, timeout_s: float = 60.0) -> None:
    """Create every topic of ``settings.topics`` (replication 1) unless it exists, then wait until the
    broker's metadata shows all of their partitions with a leader."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": _LOG}  # client logs via logging
    admin = AdminClient(config)
    names = settings.topics.all()
    wanted = [
        NewTopic(name, settings.partitions, 1, config=topic_config(name, settings.topics)) for name in names
    ]
    futures = admin.create_topics(wanted, operation_timeout=timeout_s, request_timeout=timeout_s)
    existing = []
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise DevstackError(f"could not create topic {name} on {bootstrap}: {exc}") from exc
            existing.append(name)
    for name in sorted(settings.topics.compacted() & set(existing)):
        _check_compacted(admin, name, timeout_s)
    _wait_for_partitions(admin, names, settings.partitions, time.monotonic() + timeout_s)


def delete_topics(bootstrap: str, names: list[str], *, timeout_s: float = 30.0) -> list[str]:
    """Delete ``names`` (best effort: clean-up must not fail a run); returns those that could not be."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": _LOG}
    admin = AdminClient(config)
    failed = []
    for name, future in admin.delete_topics(names, operation_timeout=timeout_s).items():
        try:
            future.result()
        except Exception:
            failed.append(name)
    return failed


def _check_compacted(admin: AdminClient, topic: str, timeout_s: float) -> None:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource], request_timeout=timeout_s)[resource].result()
    policy = configs["cleanup.policy"].value
    if "compact" not in policy:
        raise DevstackError(f"topic {topic} exists with cleanup.policy={policy}; it must compact")


def _wait_for_partitions(admin: AdminClient, names: list[str], partitions: int, deadline: float) -> None:
    while True:
        metadata = admin.list_topics(timeout=max(1.0, deadline - time.monotonic()))
        pending = []
        for name in names:
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None:
                pending.append(name)
            elif len(topic.partitions) != partitions:
                raise DevstackError(
                    f"topic {name} has {len(topic.partitions)} partitions, the settings say {partitions}: "
                    "keys would be routed differently; delete the topic or use its partition count"
                )
            elif any(p.leader < 0 for p in topic.partitions.values()):
                pending.append(name)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise DevstackError(f"topics {pending} have no leader for every partition yet")
        time.sleep(0.1)
