"""Following ``payments.results`` (read_committed) while a run converges: which operations exist and
whether they are terminal. Only used to know *when* to judge; the judging re-reads the topics."""

from __future__ import annotations

import threading

from payments.schemas.state import Operation, OperationKind, ResultEvent
from payments.settings import KafkaSettings
from payments.streaming.read import TopicReader


class ResultsTail:
    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._ops: dict[str, Operation] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="results-tail", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def open_ops(self, must_exist: set[str]) -> tuple[int, int]:
        """(payments and top-ups not yet terminal, ids in ``must_exist`` not seen yet)."""
        with self._lock:
            money = (OperationKind.PAYMENT, OperationKind.TOP_UP)
            pending = sum(1 for op in self._ops.values() if op.kind in money and not op.is_terminal)
            return pending, len(must_exist - self._ops.keys())

    def _loop(self) -> None:
        # Broker restarts are the point of the exercise; their connection errors are not news.
        reader = TopicReader(
            self._kafka,
            [self._kafka.topics.results],
            name="chaos-tail",
            overrides={"log_level": 0},
            metadata_timeout_s=30,
        )
        try:
            while not self._stop.is_set():
                for record in reader.poll(0.2):
                    if record.value is None:
                        continue
                    op = ResultEvent.model_validate_json(record.value).operation
                    if op is not None:
                        with self._lock:
                            self._ops[op.op_id] = op
        finally:
            reader.close()
