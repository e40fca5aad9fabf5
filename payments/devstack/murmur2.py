"""Kafka's key -> partition function, as the Java client and librdkafka's ``murmur2_random`` compute it.

The gateway uses :func:`partition_for` to know which partition (so which processor) owns an account key
without asking Kafka. It must equal the producers' partitioner bit for bit, or two writers could end up
owning one account.

This is ``org.apache.kafka.common.utils.Utils.murmur2`` (MurmurHash2, seed 0x9747b28c) followed by
``Utils.toPositive(h) % n``. Java's ``int`` arithmetic wraps at 32 bits, which is done here by masking.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The Java client's ``Utils.murmur2(data)``: a signed 32-bit int, as Java returns it."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    tail_start = length - length % 4
    for i in range(0, tail_start, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> _R  # Java's >>> on an int: k is already the unsigned 32-bit pattern
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    rest = length % 4
    # Java's switch falls through from case 3 to case 1; the multiply only happens if a tail exists.
    if rest == 3:
        h ^= data[tail_start + 2] << 16
    if rest >= 2:
        h ^= data[tail_start + 1] << 8
    if rest >= 1:
        h ^= data[tail_start]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a keyed record lands on in a topic of ``partitions`` partitions."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, got {partitions}")
    # Utils.toPositive: clear the sign bit (not abs(), which differs for negative values).
    return (murmur2(key) & 0x7FFFFFFF) % partitions
