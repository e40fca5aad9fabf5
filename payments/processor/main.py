"""``payments processor``: one processor instance, the single writer of the partitions it owns."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from payments.observability import OpsServer, configure_logging
from payments.processor.decide import Policy
from payments.processor.transformer import PaymentsTransformer, StateCodec
from payments.settings import KafkaSettings, with_bootstrap
from payments.streaming.runtime import ExactlyOnceRuntime
from payments.streaming.settings import RuntimeSettings

log = logging.getLogger(__name__)


class ProcessorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True)

    kafka: KafkaSettings = KafkaSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    # Stable across restarts of the same instance: it names the transactional id that fences zombies.
    instance: int = Field(default=0, ge=0)
    # How long a payment or top-up may stay without a PSP outcome before the reconciler may expire it
    # (its hold is kept until then), in ms.
    operation_ttl_ms: int = Field(default=15 * 60 * 1000, ge=1000)
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=0, ge=0)
    log_level: str = "INFO"


def build_runtime(settings: ProcessorSettings, ready: threading.Event) -> ExactlyOnceRuntime:
    runtime_settings = settings.runtime.model_copy(
        update={"transactional_id": f"{settings.runtime.group_id}-{settings.instance}"}
    )
    return ExactlyOnceRuntime(
        client_config=settings.kafka.client_config(),
        settings=runtime_settings,
        input_topic=settings.kafka.topics.commands,
        changelog_topic=settings.kafka.topics.state,
        transformer=PaymentsTransformer(
            settings.kafka.topics, Policy(operation_ttl_ms=settings.operation_ttl_ms)
        ),
        codec=StateCodec(),
        on_ready=ready.set,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="payments processor")
    parser.add_argument("--instance", type=int, help="stable instance ordinal (names the transactional id)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers")
    parser.add_argument("--ops-port", type=int, help="port for /healthz /readyz /metrics (0 = any)")
    args = parser.parse_args(argv)
    overrides: dict[str, object] = {}
    if args.instance is not None:
        overrides["instance"] = args.instance
    if args.ops_port is not None:
        overrides["ops_port"] = args.ops_port
    settings = ProcessorSettings(**overrides)  # type: ignore[arg-type]
    settings = with_bootstrap(settings, args.bootstrap)
    configure_logging(f"processor-{settings.instance}", settings.log_level)
    stop = threading.Event()
    ready = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ops = OpsServer(settings.ops_host, settings.ops_port, ready.is_set).start()
    log.info("ops endpoints on http://%s:%d", settings.ops_host, ops.port)
    try:
        build_runtime(settings, ready).run(stop)
    finally:
        ops.stop()
    return 0
