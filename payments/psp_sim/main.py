"""``payments psp-sim``: run the PSP simulator with uvicorn.

    payments psp-sim --host 127.0.0.1 --port 8090 --seed 7 \\
        --latency-median-ms 1500 --latency-max-ms 3000 \\
        --webhook-url http://127.0.0.1:8000/v1/psp/webhooks --webhook-secret whsec_...

Flags override ``PSP_SIM_*`` environment variables, which override the defaults in ``PspSimSettings``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import uvicorn
from pydantic import ValidationError

from payments.psp_sim.app import create_app
from payments.psp_sim.settings import PspSimSettings

log = logging.getLogger("payments.psp_sim")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payments psp-sim", description="Run the PSP simulator.")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--seed", type=int, help="seed of every random stream (default: random, logged)")
    parser.add_argument("--latency-median-ms", type=float)
    parser.add_argument("--latency-max-ms", type=float)
    parser.add_argument("--timeout-hang-s", type=float, help="how long timeout_after_commit hangs")
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", help="whsec_<base64>; prefer PSP_SIM_WEBHOOK_SECRET")
    parser.add_argument("--log-level")
    return parser


def build_settings(argv: list[str]) -> PspSimSettings:
    args = vars(_parser().parse_args(argv))
    overrides: dict[str, Any] = {name: value for name, value in args.items() if value is not None}
    return PspSimSettings(**overrides)


def main(argv: list[str]) -> int:
    try:
        settings = build_settings(argv)
    except ValidationError as exc:
        print(f"payments psp-sim: invalid settings\n{exc}")
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Off: uvicorn logs raw paths, which include idempotency keys. MetricsMiddleware logs templates.
        access_log=False,
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
    )
    uvicorn.Server(config).run()
    return 0
