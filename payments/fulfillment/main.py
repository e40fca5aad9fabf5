"""``payments fulfillment-example``: the reference downstream consumer. Applies ``payments.results`` to a
SQLite file exactly once (dedupe by per-account ``seq``, Kafka offsets stored in the same transaction as the
effects) until SIGTERM/SIGINT. The pattern is described in docs/downstream.md.

    payments fulfillment-example --db fulfillment.sqlite3 --group-id shop-fulfillment

Flags override ``PAYMENTS_*`` environment variables (``PAYMENTS_DB_PATH``, ``PAYMENTS_GROUP_ID``,
``PAYMENTS_GAP_POLICY``, ``PAYMENTS_KAFKA__BOOTSTRAP``, ``PAYMENTS_KAFKA__TOPICS__RESULTS``...), which
override the running dev stack's broker and topics (``.devstack/stack.json``), which override the defaults
in ``payments.fulfillment.settings``.

Exit codes: 0 after a clean stop; 1 when a result needs a human (a sequence gap or an undecodable record:
everything before it is applied and the stored offset points at it) or on a fatal Kafka error; restarting
without intervention stops at the same record again.
"""

from __future__ import annotations

import logging

from payments import service
from payments.devstack.discovery import Resolution
from payments.fulfillment.apply import GapPolicy
from payments.fulfillment.consumer import ResultsConsumer
from payments.fulfillment.errors import FulfillmentError
from payments.fulfillment.settings import FulfillmentSettings
from payments.fulfillment.store import FulfillmentStore

log = logging.getLogger(__name__)


def _settings(argv: list[str]) -> tuple[FulfillmentSettings, Resolution]:
    parser = service.parser(
        "payments fulfillment-example",
        "reference downstream consumer: results -> SQLite, exactly once by seq",
    )
    parser.add_argument("--db", help="SQLite file for effects, progress and offsets (created if missing)")
    parser.add_argument("--group-id", help="Kafka consumer group")
    parser.add_argument(
        "--gap-policy",
        choices=[p.value for p in GapPolicy],
        help="stop (default) or baseline: accept the first seq seen for a never-seen account",
    )
    args = parser.parse_args(argv)
    return service.settings(
        FulfillmentSettings, args, db_path=args.db, group_id=args.group_id, gap_policy=args.gap_policy
    )


def main(argv: list[str]) -> int:
    settings, resolution = _settings(argv)
    service.setup_logging("fulfillment", settings, resolution)
    try:
        store = FulfillmentStore(settings.db_path, busy_timeout_s=settings.db_busy_timeout_s)
    except FulfillmentError as exc:
        log.error("cannot open the store: %s", exc)
        return 1
    consumer = ResultsConsumer(settings, store)
    try:
        with service.serve(settings, consumer.ready) as stop:
            consumer.run(stop)
    except FulfillmentError as exc:
        log.error("fulfillment-example stopped: %s", exc)
        return 1
    finally:
        store.close()
    log.info("stopped cleanly")
    return 0
