"""Reading a whole topic as a read_committed consumer would (in per-partition order)."""

from __future__ import annotations

from collections.abc import Iterator

from payments.settings import KafkaSettings
from payments.streaming.read import read_to_end


def read_topic(
    kafka: KafkaSettings,
    topic: str,
    *,
    stall_s: float = 30.0,
    timeout_s: float = 300,
    keep_tombstones: bool = False,
) -> Iterator[tuple[bytes, bytes | None]]:
    """Yield (key, value) of every committed record up to the end offsets (high watermarks) taken at the
    start.

    Stops once every partition reached the end offset seen at the start, or after ``stall_s`` without a
    record (an open transaction keeps a read_committed reader behind the LSO until it is resolved, which
    takes at most ``transaction.timeout.ms``).
    """
    for record in read_to_end(kafka, topic, name="audit", stall_s=stall_s, timeout_s=timeout_s):
        if record.value is not None or keep_tombstones:
            yield record.key or b"", record.value
