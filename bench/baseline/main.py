"""``python -m bench.baseline.main``: serve the baseline with uvicorn, one process like the gateway."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from bench.baseline.app import create_app
from bench.baseline.settings import BaselineSettings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.baseline.main", description=__doc__)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--variant", choices=["locked", "unlocked"], default=None)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("port", args.port), ("variant", args.variant)) if v is not None}
    settings = BaselineSettings(**overrides)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=75,
        # Requests still queued on the row lock when the benchmark moves on are not worth finishing.
        timeout_graceful_shutdown=1,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
