"""``payments gateway --host H --port P``: serve the HTTP API with uvicorn.

Other settings come from the environment (``PAYMENTS_KAFKA__BOOTSTRAP``, ``PAYMENTS_REDIS__URL``, ...;
see ``payments.gateway.settings``); command-line flags win over the environment.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from payments.gateway.app import create_app
from payments.gateway.settings import GatewaySettings
from payments.observability import configure_logging


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="payments gateway", description=__doc__)
    parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8080)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = GatewaySettings(**overrides)
    configure_logging("gateway", args.log_level)
    app = create_app(settings)
    # One process, one event loop: the idempotency and ordering guarantees do not depend on it, so scale
    # out with more processes behind a load balancer rather than uvicorn workers.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # Longer than any client's or load balancer's idle time-out (httpx 5 s, ALB 60 s): a server that
        # closes an idle keep-alive connection first races the client's next request on it, which the
        # client sees as a reset it cannot tell from a lost request.
        timeout_keep_alive=settings.keep_alive_s,
    )
    return 0
