"""``payments audit``: read the results, ledger and changelog topics (read_committed) and check the
invariants of DESIGN §3 that they can show. Prints a report; exits 1 on any violation."""

from __future__ import annotations

import argparse
import sys

from pydantic_settings import BaseSettings, SettingsConfigDict

from payments.audit.checks import AuditReport, audit
from payments.audit.reader import read_topic
from payments.processor.transformer import StateCodec
from payments.schemas.ledger import LedgerTransaction
from payments.schemas.state import AccountSnapshot, Operation, ResultEvent
from payments.settings import KafkaSettings


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True)

    kafka: KafkaSettings = KafkaSettings()


def run_audit(kafka: KafkaSettings) -> AuditReport:
    t = kafka.topics
    results = [ResultEvent.model_validate_json(v) for _, v in read_topic(kafka, t.results) if v]
    ledger = [LedgerTransaction.model_validate_json(v) for _, v in read_topic(kafka, t.ledger) if v]
    codec = StateCodec()
    latest: dict[str, AccountSnapshot | Operation] = {}
    for key, value in read_topic(kafka, t.state, keep_tombstones=True):
        k = key.decode()
        if value is None:
            latest.pop(k, None)
        else:
            item = codec.decode(k, value)
            assert isinstance(item, AccountSnapshot | Operation)
            latest[k] = item
    return audit(results, ledger, latest.values())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="payments audit", description=__doc__)
    parser.add_argument(
        "--bootstrap", help="Kafka bootstrap servers (default from PAYMENTS_KAFKA__BOOTSTRAP)"
    )
    args = parser.parse_args(argv)
    settings = AuditSettings()
    kafka = settings.kafka
    if args.bootstrap:
        kafka = kafka.model_copy(update={"bootstrap": args.bootstrap})
    report = run_audit(kafka)
    print(report.render())
    sys.stdout.flush()
    return 0 if report.clean else 1
