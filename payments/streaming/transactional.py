"""A producer that publishes a batch of records all or nothing, under a fixed ``transactional.id``.

``init_transactions`` fences any earlier producer with the same id (its open transaction is aborted and it
can commit nothing more), so two instances of a job never both publish: the newer one wins.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Producer

from payments.settings import KafkaSettings
from payments.streaming.config import transactional_config

# (topic, key, value)
Outgoing = tuple[str, bytes, bytes]


class TransactionalProducer:
    def __init__(self, kafka: KafkaSettings, transactional_id: str, *, init_timeout_s: float = 60.0) -> None:
        """Blocking: registers the id with the transaction coordinator, fencing earlier holders."""
        self._producer = Producer(transactional_config(kafka, transactional_id))
        self._producer.init_transactions(init_timeout_s)

    def publish(self, records: Iterable[Outgoing], *, timeout_s: float = 30.0) -> None:
        """Every record in one transaction: committed together, or aborted (and the error raised)."""
        self._producer.begin_transaction()
        try:
            for topic, key, value in records:
                self._producer.produce(topic, key=key, value=value)
            self._producer.commit_transaction(timeout_s)
        except Exception:
            self._producer.abort_transaction(timeout_s)
            raise

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
