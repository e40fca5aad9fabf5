"""``python -m bench.bare --port P``: a bare FastAPI POST endpoint, the floor the gateway is compared to.

Same route, same body model (``PaymentRequest``, so the same validation) and the same uvicorn settings as
the gateway; it answers 202 with a small JSON body and does nothing else: no auth, no Redis, no Kafka.
"""

from __future__ import annotations

import argparse
import sys

import orjson
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

from payments.schemas.api import PaymentRequest


def create_app() -> FastAPI:
    app = FastAPI(title="bare FastAPI POST endpoint")

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/accounts/{account_id}/payments", status_code=202)
    async def request_payment(account_id: str, body: PaymentRequest) -> Response:
        doc = {"id": f"pay_{account_id}", "account_id": account_id, "amount": body.amount,
               "currency": body.currency, "payee": body.payee, "status": "pending"}  # fmt: skip
        return Response(orjson.dumps(doc), status_code=202, media_type="application/json")

    return app


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.bare", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="worker processes, as the gateway's --workers")
    args = parser.parse_args(argv)
    uvicorn.run(
        "bench.bare:create_app" if args.workers > 1 else create_app(),
        factory=args.workers > 1,
        workers=args.workers,
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=75,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
