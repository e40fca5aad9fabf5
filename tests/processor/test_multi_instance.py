"""Several processor instances share the partitions: rebalances and zombies must not break exactly-once.

Instances are real processes with stable transactional ids. Checks come from the topics and the audit.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest

from payments.settings import KafkaSettings
from tests.processor.workload import Workload, check_exactly_once, make_workload
from tests.support import Service, processor, producer, send

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _instances(kafka: KafkaSettings, n: int, log_dir: Path) -> list[Service]:
    procs = [processor(kafka, f"{kafka.topics.commands}.", i, log_dir) for i in range(n)]
    for p in procs:
        # Short timeouts so moves happen within seconds: a stopped member is evicted after 6 s and a
        # zombie's open transaction is aborted by the coordinator after 10 s.
        p.env["PAYMENTS_RUNTIME__TRANSACTION_TIMEOUT_MS"] = "10000"
    return procs


def _wait_assigned(procs: list[Service], timeout_s: float = 60) -> None:
    """Until every instance logged an assignment: only then does freezing one freeze an owner."""
    deadline = time.monotonic() + timeout_s
    while not all("assigned partitions=" in p.log_path.read_text() for p in procs if p.log_path.exists()):
        assert time.monotonic() < deadline, "instances did not all get partitions"
        time.sleep(0.2)


def _feed(kafka: KafkaSettings, w: Workload, pause_every: int, pause_s: float) -> threading.Thread:
    prod = producer(kafka)
    for cmd in w.setup:
        send(prod, kafka.topics.commands, cmd)
    prod.flush(30)

    def run() -> None:
        for i, cmd in enumerate(w.stream):
            send(prod, kafka.topics.commands, cmd)
            if i % pause_every == 0:
                time.sleep(pause_s)
        prod.flush(30)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_stopping_and_starting_instances_during_10k_commands(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    rng = random.Random(4)
    w = make_workload(rng, accounts=64, payments=4_500, duplicates=500)  # 10,000 commands
    procs = _instances(kafka_settings, 3, tmp_path)
    for p in procs:
        p.start()
    try:
        feeder = _feed(kafka_settings, w, pause_every=200, pause_s=0.2)  # ~10 s of traffic
        # Stop one instance (SIGTERM), then another, then bring both back, while traffic flows.
        for victim in (1, 2):
            time.sleep(rng.uniform(1.5, 3.0))
            procs[victim].stop()
        time.sleep(2)
        for victim in (1, 2):
            procs[victim].start()
            time.sleep(1)
        procs[0].kill9()  # and one hard crash for good measure
        procs[0].start()
        feeder.join(120)
        check_exactly_once(kafka_settings, w, "\n".join(p.log_path.read_text()[-1500:] for p in procs))
    finally:
        for p in procs:
            p.stop()


def test_sigstopped_zombie_is_fenced_and_cannot_commit(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    rng = random.Random(5)
    w = make_workload(rng, accounts=32, payments=3_000, duplicates=300)
    procs = _instances(kafka_settings, 2, tmp_path)
    for p in procs:
        p.start()
    zombie = procs[1]
    try:
        _wait_assigned(procs)
        feeder = _feed(kafka_settings, w, pause_every=100, pause_s=0.2)  # ~6 s of traffic
        time.sleep(2)
        before = len(zombie.log_path.read_text())
        zombie.signal(signal.SIGSTOP)  # frozen, possibly mid-transaction, holding partitions
        # Long enough for the coordinator to evict it (6 s session) and abort its transaction (10 s).
        time.sleep(14)
        zombie.signal(signal.SIGCONT)
        feeder.join(120)
        check_exactly_once(kafka_settings, w, zombie.log_path.read_text()[-3000:])
        time.sleep(1)
        log = zombie.log_path.read_text()[before:]
        # The zombie woke up owning partitions it no longer owned: its next transactional call must
        # have failed (fenced / aborted), and it must have recovered by rejoining instead of committing.
        assert any(s in log for s in ("fenced", "must abort", "lost partitions", "FENCED", "revoked")), log[
            -3000:
        ]
    finally:
        for p in procs:
            p.stop()
