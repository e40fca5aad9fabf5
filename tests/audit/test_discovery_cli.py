"""``payments audit`` with no flag and no environment finds the broker and topics in ``.devstack/stack.json``
of its working directory (what ``payments up`` writes), on the session's real broker."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Producer

from payments.devstack.discovery import StackInfo, write_stack
from payments.settings import KafkaSettings
from tests.fulfillment.results import history

pytestmark = pytest.mark.integration


def test_audit_reads_the_discovered_stack(tmp_path: Path, kafka_settings: KafkaSettings) -> None:
    events = history("acct-discovery", 3, random.Random(7))
    producer = Producer(kafka_settings.client_config())
    for event in events:
        producer.produce(
            kafka_settings.topics.results, key=event.account_id.encode(), value=event.model_dump_json()
        )
    assert producer.flush(30) == 0
    state_dir = tmp_path / ".devstack"
    state_dir.mkdir()
    write_stack(
        state_dir,
        StackInfo(
            bootstrap=kafka_settings.bootstrap,
            partitions=kafka_settings.partitions,
            topics=kafka_settings.topics,
            redis_url="redis://127.0.0.1:1/0",
            psp_url="http://127.0.0.1:1",
            gateway_url="http://127.0.0.1:1",
            supervisor_pid=os.getpid(),  # alive: the file is taken as a running stack's
        ),
    )
    cwd = tmp_path / "somewhere" / "below"
    cwd.mkdir(parents=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PAYMENTS_KAFKA") and k != "PAYMENTS_DEVSTACK_DIR"
    }
    proc = subprocess.run(
        [sys.executable, "-m", "payments.cli", "audit"],
        cwd=cwd,
        env=env | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert f"kafka.bootstrap={kafka_settings.bootstrap} from {state_dir / 'stack.json'}" in proc.stderr, (
        proc.stderr
    )
    assert f"results={len(events)} " in proc.stdout, proc.stdout + proc.stderr

    # The environment beats the stack file: a bootstrap with nothing behind it fails, naming its source.
    proc = subprocess.run(
        [sys.executable, "-m", "payments.cli", "audit"],
        cwd=cwd,
        env=env
        | {
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "PAYMENTS_KAFKA__BOOTSTRAP": "127.0.0.1:1",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "kafka.bootstrap=127.0.0.1:1 from env" in proc.stderr
    assert proc.returncode != 0
