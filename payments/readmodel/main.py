"""``payments projector``: run the results + ledger → Redis read-model projector until SIGTERM/SIGINT.

Settings from the environment (``PAYMENTS_KAFKA__BOOTSTRAP``, ``PAYMENTS_REDIS__URL``, ...; see
``payments.readmodel.settings.ProjectorSettings``). ``/healthz``, ``/readyz`` and ``/metrics`` are served on
``--ops-host``/``--ops-port`` (port 0 = any free port, logged at start).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from prometheus_client import REGISTRY
from redis import Redis

from payments.observability import OpsServer, configure_logging
from payments.readmodel.metrics import ProjectorMetrics
from payments.readmodel.projector import Projector
from payments.readmodel.settings import ProjectorSettings

log = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="payments projector", description=__doc__)
    parser.add_argument("--ops-host", default=None)
    parser.add_argument("--ops-port", type=int, default=None)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {
        k: v for k, v in (("ops_host", args.ops_host), ("ops_port", args.ops_port)) if v is not None
    }
    settings = ProjectorSettings(**overrides)
    configure_logging("projector", args.log_level)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    redis: Redis = Redis.from_url(
        settings.redis.url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
    )
    projector = Projector(settings, redis, ProjectorMetrics(REGISTRY))
    ops = OpsServer(settings.ops_host, settings.ops_port, projector.ready).start()
    log.info("ops endpoints on http://%s:%d", settings.ops_host, ops.port)
    try:
        projector.run(stop)
    finally:
        ops.stop()
        redis.close()
    return 0
