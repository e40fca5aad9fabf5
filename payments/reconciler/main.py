"""``payments reconciler``: resolve operations the PSP leg left open, and run settlement matching.

    payments reconciler --instance 0 --psp-url http://127.0.0.1:8090 --ops-port 9103

Three parts in one process: the tracker (exactly-once runtime over ``payments.results``, changelog
``payments.reconciler-state``) in the main thread; the sweeper (PSP lookups, commands back) and, on the
instance with ``settlement_interval_s > 0``, the settlement job, on an asyncio loop in a second thread.
Instances share the results partitions like processors do; run settlement on one of them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from payments import service
from payments.reconciler.policy import ReconcilePolicy
from payments.reconciler.psp_lookup import PspReadClient
from payments.reconciler.settlement_job import SettlementJob, SettlementSettings
from payments.reconciler.sweeper import Handoff, Sweeper, SweeperDeps
from payments.reconciler.tracking import TrackedCodec, TrackerTransformer
from payments.settings import KafkaSettings
from payments.streaming.producer import AsyncProducer
from payments.streaming.runtime import ExactlyOnceRuntime
from payments.streaming.settings import RuntimeSettings

log = logging.getLogger(__name__)


class ReconcilerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True)

    kafka: KafkaSettings = KafkaSettings()
    # Not ``runtime``: a shared environment's PAYMENTS_RUNTIME__GROUP_ID names the processors' group, and
    # joining it (or taking their transactional ids) would fence the processors.
    tracker: RuntimeSettings = RuntimeSettings(group_id="payments-reconciler")
    instance: int = Field(default=0, ge=0)
    psp_url: str = "http://127.0.0.1:8090"
    lookup_timeout_s: float = Field(default=5.0, gt=0)
    max_concurrent_lookups: int = Field(default=32, ge=1)
    # See reconciler/policy.py. All in ms. expire_grace_ms must exceed the psp-caller's call time-out.
    check_after_ms: int = Field(default=30_000, ge=0)
    unknown_check_after_ms: int = Field(default=1_000, ge=0)
    backoff_base_ms: int = Field(default=1_000, ge=1)
    backoff_cap_ms: int = Field(default=60_000, ge=1)
    expire_grace_ms: int = Field(default=30_000, ge=0)
    # 0 disables settlement on this instance.
    settlement_interval_s: float = Field(default=60.0, ge=0)
    settlement_grace_ms: int = Field(default=120_000, ge=0)
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=0, ge=0)
    log_level: str = "INFO"

    def policy(self) -> ReconcilePolicy:
        return ReconcilePolicy(
            check_after_ms=self.check_after_ms,
            unknown_check_after_ms=self.unknown_check_after_ms,
            backoff_base_ms=self.backoff_base_ms,
            backoff_cap_ms=self.backoff_cap_ms,
            expire_grace_ms=self.expire_grace_ms,
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _serve_io(settings: ReconcilerSettings, handoff: Handoff, stop: asyncio.Event) -> None:
    client = PspReadClient(
        settings.psp_url, timeout_s=settings.lookup_timeout_s, max_connections=settings.max_concurrent_lookups
    )
    producer = AsyncProducer(settings.kafka.client_config())
    sweeper = Sweeper(
        handoff,
        SweeperDeps(
            client=client,
            producer=producer,
            topics=settings.kafka.topics,
            policy=settings.policy(),
            now_ms=_now_ms,
            rng=random.Random(),  # jitter only; nothing to reproduce
            max_concurrent=settings.max_concurrent_lookups,
        ),
    )
    parts = [sweeper.run(stop)]
    if settings.settlement_interval_s > 0:
        job = SettlementJob(
            settings.kafka,
            client,
            SettlementSettings(
                interval_s=settings.settlement_interval_s,
                grace_ms=settings.settlement_grace_ms,
                transactional_id=f"{settings.tracker.group_id}-settlement",
            ),
            _now_ms,
        )
        parts.append(job.run_forever(stop))
    try:
        await asyncio.gather(*parts)
    finally:
        await client.aclose()
        producer.close()


def _io_thread(
    settings: ReconcilerSettings, handoff: Handoff, stop: threading.Event, failed: threading.Event
) -> threading.Thread:
    def run() -> None:
        async def main() -> None:
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            # The threading stop reaches the loop through a watcher; the loop's own failure sets it back.
            watcher = loop.run_in_executor(None, stop.wait)
            watcher.add_done_callback(lambda _: done.set())
            try:
                await _serve_io(settings, handoff, done)
            finally:
                stop.set()

        try:
            asyncio.run(main())
        except Exception:
            log.exception("reconciler I/O loop failed")
            failed.set()
            stop.set()

    thread = threading.Thread(target=run, name="reconciler-io", daemon=True)
    thread.start()
    return thread


def main(argv: list[str]) -> int:
    parser = service.parser("payments reconciler", __doc__, instance=True)
    parser.add_argument("--psp-url", help="base URL of the PSP (default: $PAYMENTS_PSP_URL, dev stack's)")
    args = parser.parse_args(argv)
    settings, resolution = service.settings(ReconcilerSettings, args, psp_url=args.psp_url)
    service.setup_logging(f"reconciler-{settings.instance}", settings, resolution)
    ready = threading.Event()
    with service.serve(settings, ready.is_set) as stop:
        return _run(settings, stop, ready)


def _run(settings: ReconcilerSettings, stop: threading.Event, ready: threading.Event) -> int:
    handoff = Handoff()
    io_failed = threading.Event()
    io = _io_thread(settings, handoff, stop, io_failed)
    runtime = ExactlyOnceRuntime(
        client_config=settings.kafka.client_config(),
        settings=settings.tracker.model_copy(
            update={"transactional_id": f"{settings.tracker.group_id}-{settings.instance}"}
        ),
        input_topic=settings.kafka.topics.results,
        changelog_topic=settings.kafka.topics.reconciler_state,
        transformer=TrackerTransformer(),
        codec=TrackedCodec(),
        on_ready=ready.set,
        punctuator=handoff,
        fetch_config=settings.kafka.fetch_config(),
    )
    try:
        runtime.run(stop)
    finally:
        stop.set()
        io.join(15)
    return 1 if io_failed.is_set() else 0
