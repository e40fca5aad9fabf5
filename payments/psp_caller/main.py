"""``payments psp-caller``: consume ``payments.psp-requests``, call the PSP, produce outcomes to
``payments.commands``. At-least-once with many calls in flight; any number of instances share the group.

    payments psp-caller --bootstrap 127.0.0.1:9092 --psp-url http://127.0.0.1:8090 --ops-port 9102

Flags override ``PAYMENTS_*`` environment variables (``PAYMENTS_PSP_URL``, ``PAYMENTS_MAX_IN_FLIGHT``,
``PAYMENTS_KAFKA__BOOTSTRAP``...), which override the running dev stack's broker and PSP, which override the
defaults in ``PspCallerSettings`` (payments/service.py says how).
"""

from __future__ import annotations

import asyncio
import logging
import random
import resource
import signal
import threading
import time
from collections.abc import Callable
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from payments import service
from payments.psp_caller import metrics
from payments.psp_caller.backoff import Backoff
from payments.psp_caller.breaker import BreakerState, CircuitBreaker
from payments.psp_caller.caller import CallerDeps, PspCaller
from payments.psp_caller.retry import RetryDeps, RetryPolicy
from payments.pspclient.http import PspHttp
from payments.pspclient.money import PspClient
from payments.settings import KafkaSettings
from payments.streaming.at_least_once import AtLeastOnceSettings, AtLeastOnceWorker
from payments.streaming.errors import StreamingError
from payments.streaming.producer import AsyncProducer

log = logging.getLogger(__name__)


class PspCallerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True)

    kafka: KafkaSettings = KafkaSettings()
    psp_url: str = "http://127.0.0.1:8090"
    group_id: str = "payments-psp-caller"
    # PSP requests handled at once (HTTP calls, backoffs and breaker waits); also the HTTP pool size.
    max_in_flight: int = Field(default=2000, ge=1)
    # Per HTTP attempt (connect, write, read each). Above the PSP's slowest honest answer (~3 s).
    call_timeout_s: float = Field(default=10.0, gt=0)
    # Ambiguous answers (time-outs, 500, 502) tolerated per operation before reporting unknown.
    max_attempts: int = Field(default=6, ge=1)
    backoff_base_s: float = Field(default=0.2, ge=0)
    backoff_cap_s: float = Field(default=10.0, ge=0)
    breaker_threshold: int = Field(default=20, ge=1)  # consecutive "PSP unavailable" answers
    breaker_cool_down_s: float = Field(default=2.0, ge=0)
    commit_interval_s: float = Field(default=0.2, gt=0)
    # Below the 15 s a supervisor (and tests' Service.stop) waits after SIGTERM before SIGKILL.
    shutdown_timeout_s: float = Field(default=10.0, ge=0)
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=0, ge=0)
    log_level: str = "INFO"
    # uvloop: the psp-caller's CPU per PSP call was 0.6-0.9x asyncio's (bench/psp_caller_bench.py);
    # "asyncio" is there to compare, and for platforms without uvloop (Windows).
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"


def _raise_fd_limit(needed: int) -> None:
    """Every call in flight holds a socket: lift the soft open-files limit towards the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if hard != resource.RLIM_INFINITY and hard < needed:
        log.warning("open-files limit %d is below the %d that max_in_flight needs", hard, needed)


def _breaker_changed(state: BreakerState) -> None:
    metrics.breaker_changed(state)
    # Transitions are rare and mean "the PSP is down / recovering": worth a line each for whoever is on call.
    if state is BreakerState.CLOSED:
        log.info("PSP circuit breaker closed: calls flow again")
    else:
        log.warning("PSP circuit breaker %s: calls wait for the PSP to recover", state.value)


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop  # not on Windows: imported only when chosen

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def serve(settings: PspCallerSettings, stop: asyncio.Event, ready: threading.Event) -> None:
    """Run until ``stop`` is set. Raises HandlerFailed / FatalStreamingError / DeliveryFailed on failure."""
    producer = AsyncProducer(settings.kafka.client_config())
    client = PspClient(
        PspHttp(settings.psp_url, timeout_s=settings.call_timeout_s, max_connections=settings.max_in_flight)
    )
    breaker = CircuitBreaker(
        failure_threshold=settings.breaker_threshold,
        cool_down_s=settings.breaker_cool_down_s,
        clock=time.monotonic,
        on_change=_breaker_changed,
    )
    metrics.breaker_changed(breaker.state)
    caller = PspCaller(
        CallerDeps(
            client=client,
            producer=producer,
            retry=RetryDeps(
                breaker=breaker,
                policy=RetryPolicy(
                    max_attempts=settings.max_attempts,
                    backoff=Backoff(base_s=settings.backoff_base_s, cap_s=settings.backoff_cap_s),
                ),
                rng=random.Random(),  # jitter only; nothing to reproduce
                now_ms=_now_ms,
            ),
            commands_topic=settings.kafka.topics.commands,
        )
    )
    worker = AtLeastOnceWorker(
        consumer_config=settings.kafka.consumer_config(),
        topics=[settings.kafka.topics.psp_requests],
        settings=AtLeastOnceSettings(
            group_id=settings.group_id,
            max_in_flight=settings.max_in_flight,
            commit_interval_s=settings.commit_interval_s,
            shutdown_timeout_s=settings.shutdown_timeout_s,
            session_timeout_ms=settings.session_timeout_ms,
        ),
        handler=caller.handle,
        on_ready=ready.set,
    )
    try:
        await worker.run(stop)
    finally:
        await client.aclose()
        producer.close()


async def _main(settings: PspCallerSettings, ready: threading.Event) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop, ready)


def main(argv: list[str]) -> int:
    parser = service.parser("payments psp-caller", __doc__)
    parser.add_argument(
        "--psp-url", help="base URL of the PSP (default: $PAYMENTS_PSP_URL, else the dev stack's)"
    )
    args = parser.parse_args(argv)
    settings, resolution = service.settings(PspCallerSettings, args, psp_url=args.psp_url)
    service.setup_logging("psp-caller", settings, resolution)
    _raise_fd_limit(settings.max_in_flight + 1024)  # + Kafka, ops server and headroom
    ready = threading.Event()
    # Signals are handled on the asyncio loop (_main), so only the ops endpoints come from the helper.
    with service.ops_endpoints(settings, ready.is_set):
        try:
            with asyncio.Runner(loop_factory=_loop_factory(settings.event_loop)) as runner:
                runner.run(_main(settings, ready))
        except StreamingError as exc:
            log.error("psp-caller stopped: %s", exc)
            return 1
    return 0
