"""The contract between the runtime and the code it runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from payments.streaming.store import StateAccess


@dataclass(frozen=True, slots=True)
class InputRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    key: bytes
    value: bytes


class Transformer(Protocol):
    """Turns one input record into outputs, reading and writing the partition's state.

    Must be deterministic given (state, record) and must not do I/O: the runtime may run it again on the
    same record after an aborted transaction, starting from the rolled-back state.
    """

    def __call__(self, state: StateAccess, record: InputRecord) -> Sequence[Output]: ...


class StateCodec(Protocol):
    """Serialises state values for the changelog."""

    def encode(self, key: str, value: object) -> bytes: ...

    def decode(self, key: str, raw: bytes) -> object: ...
