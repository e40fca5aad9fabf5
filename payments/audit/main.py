"""``payments audit``: read the results, ledger and changelog topics (read_committed) and check the
invariants of docs/design.md §3 that they can show. Prints a report; exits 1 on any violation."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from pydantic_settings import BaseSettings, SettingsConfigDict

from payments.audit.checks import AuditReport, PspMovement, audit
from payments.audit.psp_match import parse_psp_audit
from payments.audit.reader import read_topic
from payments.devstack.discovery import discover_settings
from payments.processor.transformer import StateCodec
from payments.pspclient.http import get_json_blocking
from payments.schemas.ledger import LedgerTransaction
from payments.schemas.state import AccountSnapshot, Operation, ResultEvent
from payments.settings import KafkaSettings


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    # Only used with --with-psp: a live stack's PSP may be ahead of our ledger by an in-flight operation.
    psp_url: str = "http://127.0.0.1:8090"


def fetch_psp_movements(psp_url: str, timeout_s: float = 30.0) -> list[PspMovement]:
    """The PSP simulator's own log of every money movement (``GET /_sim/audit``), over the shared PSP
    adapter. Raises PspTransportError, PspStatusError or ValueError (a malformed log)."""
    return parse_psp_audit(get_json_blocking(psp_url, "/_sim/audit", timeout_s=timeout_s))


@dataclass(frozen=True)
class Evidence:
    """Everything the topics say, read_committed, in per-partition order."""

    results: list[ResultEvent]
    ledger: list[LedgerTransaction]
    state: list[AccountSnapshot | Operation]  # the changelog's latest value per key

    def operations(self) -> dict[str, Operation]:
        """The last published state of every operation."""
        return {r.operation.op_id: r.operation for r in self.results if r.operation is not None}


def read_evidence(kafka: KafkaSettings) -> Evidence:
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
    return Evidence(results, ledger, list(latest.values()))


def run_audit(
    kafka: KafkaSettings, *, psp_url: str | None = None, require_terminal: bool = False
) -> AuditReport:
    ev = read_evidence(kafka)
    movements = fetch_psp_movements(psp_url) if psp_url else None
    return audit(ev.results, ev.ledger, ev.state, psp_movements=movements, require_terminal=require_terminal)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="payments audit", description=__doc__)
    parser.add_argument(
        "--bootstrap",
        help="Kafka bootstrap servers (default: $PAYMENTS_KAFKA__BOOTSTRAP, else the running dev stack's)",
    )
    parser.add_argument(
        "--psp-url", help="PSP simulator base URL: adds the three-way match against its own log"
    )
    parser.add_argument(
        "--with-psp",
        action="store_true",
        help="the three-way match against the PSP of $PAYMENTS_PSP_URL or the running dev stack",
    )
    parser.add_argument(
        "--require-terminal",
        action="store_true",
        help="invariant 9: every payment and top-up must be terminal (use after faults healed)",
    )
    args = parser.parse_args(argv)
    settings, resolution = discover_settings(
        AuditSettings, {"kafka.bootstrap": args.bootstrap, "psp_url": args.psp_url}
    )
    print(f"payments audit: {resolution.describe(settings)}", file=sys.stderr)
    psp_url = settings.psp_url if args.psp_url or args.with_psp else None
    report = run_audit(settings.kafka, psp_url=psp_url, require_terminal=args.require_terminal)
    print(report.render())
    sys.stdout.flush()
    return 0 if report.clean else 1
