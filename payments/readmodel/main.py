"""``payments projector``: run the results + ledger → Redis read-model projector until SIGTERM/SIGINT.

Settings from flags, then the environment (``PAYMENTS_KAFKA__BOOTSTRAP``, ``PAYMENTS_REDIS__URL``, ...;
see ``payments.readmodel.settings.ProjectorSettings``), then the running dev stack (``.devstack/stack.json``).
``/healthz``, ``/readyz`` and ``/metrics`` are served on ``--ops-host``/``--ops-port`` (port 0 = any free
port, logged at start).
"""

from __future__ import annotations

from prometheus_client import REGISTRY
from redis import Redis

from payments import service
from payments.readmodel.metrics import ProjectorMetrics
from payments.readmodel.projector import Projector
from payments.readmodel.settings import ProjectorSettings


def main(argv: list[str]) -> int:
    args = service.parser("payments projector", __doc__).parse_args(argv)
    settings, resolution = service.settings(ProjectorSettings, args)
    service.setup_logging("projector", settings, resolution)
    redis: Redis = Redis.from_url(
        settings.redis.url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
    )
    projector = Projector(settings, redis, ProjectorMetrics(REGISTRY))
    try:
        with service.serve(settings, projector.ready) as stop:
            projector.run(stop)
    finally:
        redis.close()
    return 0
