"""``payments broker``: one local Kafka broker in the foreground, with the payment topics created.

Runs until Ctrl-C or SIGTERM, then shuts the broker down cleanly. Without ``--data-dir`` its data lives in
a temporary folder removed on exit; with one, topics and records survive to the next run.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from payments.devstack.errors import DevstackError
from payments.devstack.kafka import KAFKA_VERSION, KafkaBroker
from payments.devstack.topics import create_topics
from payments.settings import KafkaSettings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="payments broker", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="keep the broker's data here across runs")
    parser.add_argument(
        "--partitions", type=int, default=KafkaSettings().partitions, help="partitions per topic (64)"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    # The broker runs in its own process group, so Ctrl-C reaches only us; we then stop it in order.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    broker = KafkaBroker(args.data_dir.resolve() if args.data_dir else None, partitions=args.partitions)
    try:
        broker.start()
        kafka = KafkaSettings(bootstrap=broker.bootstrap, partitions=args.partitions)
        create_topics(broker.bootstrap, kafka)
        print(f"Kafka {KAFKA_VERSION} ready, topics created ({args.partitions} partitions each)", flush=True)
        print(f"  data {broker.data_dir}\n  log  {broker.log_path}", flush=True)
        print(f"export PAYMENTS_KAFKA__BOOTSTRAP={broker.bootstrap}", flush=True)
        while not stop.wait(0.5):
            if broker.pid is None:
                print(f"payments broker: the broker exited; see {broker.log_path}", file=sys.stderr)
                return 1
        return 0
    except DevstackError as exc:
        print(f"payments broker: {exc}", file=sys.stderr)
        return 1
    finally:
        broker.stop()
