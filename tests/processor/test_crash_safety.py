"""Crash safety of the exactly-once runtime with the real processor process and a real broker.

While >=2,000 payments, their PSP outcomes and redelivered duplicates of both stream in, the processor is ``kill -9``ed at
random points and restarted. Afterwards the topics themselves (read_committed) must show every command
reflected exactly once, per-account sequences dense, the ledger balanced and balances equal to the replay.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from payments.settings import KafkaSettings
from tests.processor.workload import check_exactly_once, make_workload
from tests.support import processor, producer, send

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_kill9_during_stream_reflects_every_command_exactly_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    rng = random.Random(20261121)
    w = make_workload(rng, accounts=16, payments=2_000, duplicates=300)
    topic = kafka_settings.topics.commands
    prod = producer(kafka_settings)
    for cmd in w.setup:
        send(prod, topic, cmd)
    assert prod.flush(30) == 0

    proc = processor(kafka_settings, f"{topic}.", 0, tmp_path).start()
    done = threading.Event()

    def feed() -> None:
        # ~12 s of steady traffic so that kills land mid-batch, mid-commit and mid-restore.
        for i, cmd in enumerate(w.stream):
            send(prod, topic, cmd)
            if i % 50 == 0:
                time.sleep(0.25)
        prod.flush(30)
        done.set()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    kills = 0
    try:
        while kills < 3 or not done.is_set():
            time.sleep(rng.uniform(2.0, 4.0))
            proc.kill9()
            kills += 1
            proc.start()
        feeder.join(60)
        check_exactly_once(kafka_settings, w, proc.log_path.read_text()[-3000:])
    finally:
        proc.stop()
    assert kills >= 3
