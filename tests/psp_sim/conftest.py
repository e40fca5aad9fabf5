"""Fixtures of the PSP simulator tests; the machinery behind them is in ``support.py``."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from payments.psp_sim.app import create_app
from tests.psp_sim.support import FakeClock, Received, WebhookSink, asgi_client, make_settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(make_settings(), clock=clock)) as c:
        yield c


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    sink_ref: list[WebhookSink] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would; every reply has a length

        def do_POST(self) -> None:
            sink = sink_ref[0]
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with sink.lock:
                sink.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                status = sink.statuses.pop(0) if sink.statuses else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink_ref.append(WebhookSink(url=f"http://127.0.0.1:{server.server_address[1]}/hooks"))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="webhook-sink", daemon=True)
    thread.start()
    try:
        yield sink_ref[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
