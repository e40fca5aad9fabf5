"""What every long-running service's ``main()`` does besides its own work, in one place.

    parser = service.parser("payments processor", __doc__, instance=True)
    args = parser.parse_args(argv)
    settings, resolution = service.settings(ProcessorSettings, args)
    service.setup_logging(f"processor-{settings.instance}", settings, resolution)
    ready = threading.Event()
    with service.serve(settings, ready.is_set) as stop:
        build_runtime(settings, ready).run(stop)

* the common flags: ``--bootstrap``, ``--log-level``, ``--ops-host``, ``--ops-port`` (and ``--instance``);
* settings: flag > environment (``PAYMENTS_*``) > the running dev stack (``.devstack/stack.json``) >
  defaults, via :func:`payments.devstack.discovery.discover_settings`, with the source of each logged;
* logging configured once, named after the service;
* SIGINT/SIGTERM set a stop event instead of raising in whatever the main thread is doing;
* ``/healthz``, ``/readyz``, ``/metrics`` on the ops port for the service's lifetime.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

from pydantic_settings import BaseSettings

from payments.devstack.discovery import Resolution, discover_settings
from payments.observability import OpsServer, configure_logging

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseSettings)


class ServiceSettings(Protocol):
    """The fields :func:`serve` and :func:`setup_logging` need from a service's settings."""

    @property
    def ops_host(self) -> str: ...

    @property
    def ops_port(self) -> int: ...

    @property
    def log_level(self) -> str: ...


def parser(
    prog: str, description: str | None = None, *, instance: bool = False, ops: bool = True
) -> argparse.ArgumentParser:
    """An argument parser with the flags every service shares; add the service's own to it."""
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--bootstrap",
        help="Kafka bootstrap servers (default: $PAYMENTS_KAFKA__BOOTSTRAP, else the running dev stack's)",
    )
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING... (default: $PAYMENTS_LOG_LEVEL, INFO)")
    if ops:
        p.add_argument("--ops-host", help="address for /healthz /readyz /metrics")
        p.add_argument("--ops-port", type=int, help="port for /healthz /readyz /metrics (0 = any, logged)")
    if instance:
        p.add_argument("--instance", type=int, help="stable instance ordinal (names the transactional id)")
    return p


def flags(args: argparse.Namespace, **extra: object) -> dict[str, object]:
    """The common flags (and ``extra`` ones, by dotted setting name) as discovery's flag mapping."""
    out: dict[str, object] = {"kafka.bootstrap": args.bootstrap, "log_level": args.log_level}
    for name in ("ops_host", "ops_port", "instance"):
        if hasattr(args, name):
            out[name] = getattr(args, name)
    out.update(extra)
    return out


def settings(cls: type[T], args: argparse.Namespace, **extra: object) -> tuple[T, Resolution]:
    """``cls`` from flags > environment > dev stack > defaults; ``extra`` are the service's own flags."""
    return discover_settings(cls, flags(args, **extra))


def setup_logging(name: str, settings: ServiceSettings, resolution: Resolution) -> None:
    """Logging named after the service, and one line saying where its broker, Redis and PSP came from."""
    configure_logging(name, settings.log_level)
    log.info("settings: %s", resolution.describe(settings))


def stop_on_signals() -> threading.Event:
    """An event SIGINT and SIGTERM set: the service's loop checks it and stops cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@contextmanager
def ops_endpoints(settings: ServiceSettings, ready: Callable[[], bool]) -> Iterator[OpsServer]:
    """The ops endpoints for the block's duration (for a service that handles its signals itself, e.g.
    with ``loop.add_signal_handler`` on an asyncio loop)."""
    ops = OpsServer(settings.ops_host, settings.ops_port, ready).start()
    log.info("ops endpoints on http://%s:%d", settings.ops_host, ops.port)
    try:
        yield ops
    finally:
        ops.stop()


@contextmanager
def serve(settings: ServiceSettings, ready: Callable[[], bool]) -> Iterator[threading.Event]:
    """The stop event (signals installed) with the ops endpoints up for the block's duration."""
    stop = stop_on_signals()
    with ops_endpoints(settings, ready):
        yield stop
