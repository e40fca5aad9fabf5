"""In-memory keyed state per input partition, with per-batch undo.

Values are immutable objects (frozen pydantic models); the runtime never mutates a value in place, so the
undo log only needs the previous reference. A batch's writes become changelog records (latest value per
key only) produced in the same Kafka transaction as the outputs and the input offsets.
"""

from __future__ import annotations

from collections.abc import Iterator

_MISSING = object()


class PartitionStore:
    """The state of one input partition: string key -> immutable value."""

    def __init__(self, partition: int, data: dict[str, object] | None = None) -> None:
        self.partition = partition
        self.data: dict[str, object] = data if data is not None else {}

    def __len__(self) -> int:
        return len(self.data)


class BatchState:
    """Tracks writes of one transaction across partitions so they can be flushed or rolled back."""

    def __init__(self) -> None:
        self._undo: dict[tuple[int, str], object] = {}
        self._stores: dict[int, PartitionStore] = {}

    def access(self, store: PartitionStore) -> StateAccess:
        self._stores[store.partition] = store
        return StateAccess(store, self)

    def record(self, store: PartitionStore, key: str) -> None:
        self._undo.setdefault((store.partition, key), store.data.get(key, _MISSING))

    def dirty(self) -> Iterator[tuple[int, str, object | None]]:
        """(partition, key, current value or None for a delete) of every key written in this batch."""
        for partition, key in self._undo:
            yield partition, key, self._stores[partition].data.get(key)

    def rollback(self) -> None:
        for (partition, key), old in self._undo.items():
            data = self._stores[partition].data
            if old is _MISSING:
                data.pop(key, None)
            else:
                data[key] = old
        self._undo.clear()


class StateAccess:
    """What a transformer sees: reads and writes of its input partition's state."""

    def __init__(self, store: PartitionStore, batch: BatchState) -> None:
        self._store = store
        self._batch = batch

    @property
    def partition(self) -> int:
        return self._store.partition

    def get(self, key: str) -> object | None:
        return self._store.data.get(key)

    def put(self, key: str, value: object) -> None:
        self._batch.record(self._store, key)
        self._store.data[key] = value

    def delete(self, key: str) -> None:
        self._batch.record(self._store, key)
        self._store.data.pop(key, None)
