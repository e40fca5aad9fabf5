"""Crash-only escape from a client call that never returns.

librdkafka's ``send_offsets_to_transaction()`` can block forever after the group coordinator restarts:
it does not honour its timeout (confluentinc/librdkafka#5456, #5511; found by ``payments chaos``, seed
infra/2). A blocked C call cannot be cancelled from Python, and a processor stuck inside one keeps its
partitions (and every account on them) frozen until ``max.poll.interval.ms``. So a watchdog thread
ends the process once a guarded call has overrun its own timeout by a margin; the supervisor restarts
it, and the new incarnation's ``init_transactions()`` fences the old one and aborts its transaction.
Nothing is lost: the transaction was never committed, and its input is re-read from the committed
offsets.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# Distinct from a crash by exception (1) and from a fenced instance (the processor's own codes).
EXIT_STUCK = 75


class Watchdog:
    def __init__(
        self,
        margin_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_stuck: Callable[[str], None] | None = None,
        interval_s: float = 1.0,
    ) -> None:
        self._margin_s = margin_s
        self._clock = clock
        self._on_stuck = on_stuck or _exit
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._call: tuple[str, float] | None = None  # (what, deadline)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def guard(self, what: str, timeout_s: float) -> Iterator[None]:
        """Wrap one blocking call that was given ``timeout_s``."""
        with self._lock:
            self._call = (what, self._clock() + timeout_s + self._margin_s)
        try:
            yield
        finally:
            with self._lock:
                self._call = None

    def check(self) -> bool:
        """True (and ``on_stuck`` called) if the guarded call is past its deadline."""
        with self._lock:
            call = self._call
        if call is None or self._clock() < call[1]:
            return False
        self._on_stuck(call[0])
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.check()


def _exit(what: str) -> None:
    log.critical("%s overran its timeout; exiting so that a fresh instance takes over", what)
    logging.shutdown()
    os._exit(EXIT_STUCK)
