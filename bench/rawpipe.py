"""``python -m bench.rawpipe``: the floor the exactly-once runtime is compared to. Consumes the same
commands with plain confluent-kafka and produces each value unchanged to an output topic, per batch of
the same size the runtime uses:

* ``--mode raw``: at-least-once: produce the batch, ``flush()`` (every delivery acknowledged, acks=all),
  then commit the input offsets;
* ``--mode eos``: one Kafka transaction per batch with the input offsets in it (what the runtime does,
  minus decoding, deciding, state and the changelog).

Runs until SIGTERM; progress is read from outside through the group's committed offsets.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from confluent_kafka import Consumer, Producer, TopicPartition


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.rawpipe", description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--mode", choices=["raw", "eos"], required=True)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    base = {"bootstrap.servers": args.bootstrap}
    consumer = Consumer(
        {**base, "group.id": args.group, "enable.auto.commit": False, "isolation.level": "read_committed",
         "auto.offset.reset": "earliest"}
    )  # fmt: skip
    producer_config = {
        **base,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "partitioner": "murmur2_random",
    }
    eos = args.mode == "eos"
    if eos:
        producer_config["transactional.id"] = f"{args.group}-0"
    producer = Producer(producer_config)
    if eos:
        producer.init_transactions(60)
    consumer.subscribe([args.input])
    try:
        while not stop.is_set():
            msgs = [m for m in consumer.consume(args.batch, 0.05) if m.error() is None]
            if not msgs:
                continue
            if eos:
                producer.begin_transaction()
            nxt: dict[int, int] = {}
            for m in msgs:
                producer.produce(args.output, value=m.value(), key=m.key(), partition=m.partition() or 0)
                nxt[m.partition() or 0] = (m.offset() or 0) + 1
            offsets = [TopicPartition(args.input, p, o) for p, o in nxt.items()]
            if eos:
                producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
                producer.commit_transaction(30)
            else:
                producer.flush(30)
                consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()
        producer.flush(5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
