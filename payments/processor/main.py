"""``payments processor``: one processor instance, the single writer of the partitions it owns."""

from __future__ import annotations

import logging
import threading

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from payments import service
from payments.processor.decide import Policy
from payments.processor.retention import DEFAULT_RETENTION_MS, RetentionPruner
from payments.processor.transformer import PaymentsTransformer, StateCodec
from payments.settings import KafkaSettings
from payments.streaming.runtime import ExactlyOnceRuntime
from payments.streaming.settings import RuntimeSettings

log = logging.getLogger(__name__)

_DAY_MS = 24 * 3600 * 1000


class ProcessorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True)

    kafka: KafkaSettings = KafkaSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    # Stable across restarts of the same instance: it names the transactional id that fences zombies.
    instance: int = Field(default=0, ge=0)
    # How long a payment or top-up may stay without a PSP outcome before the reconciler may expire it
    # (its hold is kept until then), in ms.
    operation_ttl_ms: int = Field(default=15 * 60 * 1000, ge=1000)
    # An ended operation is forgotten (its changelog key tombstoned) this long after its last change, in
    # ms: bounded state (processor/retention.py says why 35 days). It must exceed the gateway's idempotency
    # retention (24 h) and the commands topic's retention; shorter values are for tests.
    terminal_retention_ms: int = Field(default=DEFAULT_RETENTION_MS, ge=1000)
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=0, ge=0)
    log_level: str = "INFO"


def build_runtime(settings: ProcessorSettings, ready: threading.Event) -> ExactlyOnceRuntime:
    if settings.terminal_retention_ms < _DAY_MS:
        log.warning(
            "terminal_retention_ms=%d is below the gateway's 24 h idempotency retention: a key retried "
            "after that long would start a new operation",
            settings.terminal_retention_ms,
        )
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
        pruner=RetentionPruner(settings.terminal_retention_ms),
        fetch_config=settings.kafka.fetch_config(),
    )


def main(argv: list[str]) -> int:
    args = service.parser("payments processor", __doc__, instance=True).parse_args(argv)
    settings, resolution = service.settings(ProcessorSettings, args)
    service.setup_logging(f"processor-{settings.instance}", settings, resolution)
    ready = threading.Event()
    with service.serve(settings, ready.is_set) as stop:
        build_runtime(settings, ready).run(stop)
    return 0
