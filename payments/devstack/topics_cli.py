"""``payments topics``: create the payment topics on a running broker (idempotent).

Topic names and defaults come from the same ``PAYMENTS_KAFKA__*`` environment the services read, so the
topics created are the ones they will use; ``--bootstrap`` and ``--partitions`` override it.
"""

from __future__ import annotations

import argparse
import sys

from pydantic_settings import BaseSettings, SettingsConfigDict

from payments.devstack.discovery import discover_settings
from payments.devstack.errors import DevstackError
from payments.devstack.topics import create_topics, topic_config
from payments.settings import KafkaSettings


class TopicsSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="payments topics", description=__doc__)
    parser.add_argument(
        "--bootstrap",
        help="broker address (default: $PAYMENTS_KAFKA__BOOTSTRAP, else the running dev stack's)",
    )
    parser.add_argument(
        "--partitions", type=int, help="partitions per topic (default: env, dev stack, settings: 64)"
    )
    args = parser.parse_args(argv)
    settings, resolution = discover_settings(
        TopicsSettings, {"kafka.bootstrap": args.bootstrap, "kafka.partitions": args.partitions}
    )
    print(f"payments topics: {resolution.describe(settings)}", file=sys.stderr)
    kafka = settings.kafka
    try:
        create_topics(kafka.bootstrap, kafka)
    except DevstackError as exc:
        print(f"payments topics: {exc}", file=sys.stderr)
        return 1
    for name in kafka.topics.all():
        policy = topic_config(name, kafka.topics)["cleanup.policy"]
        print(f"{name}: {kafka.partitions} partitions, cleanup.policy={policy}")
    return 0
