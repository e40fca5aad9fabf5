"""Health, readiness and Prometheus metrics over HTTP for services that are not HTTP servers themselves
(processor, projector, psp-caller). Runs in a daemon thread; the service supplies its readiness check."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)


def configure_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO: thousands of PSP calls a second would drown the log (and its URLs
    # carry idempotency keys in lookups). Our own code logs what matters about each call.
    logging.getLogger("httpx").setLevel(logging.WARNING)


class OpsServer:
    """``/healthz`` (process alive), ``/readyz`` (``ready()`` true) and ``/metrics``."""

    def __init__(self, host: str, port: int, ready: Callable[[], bool]) -> None:
        ready_check = ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    self._send(200, b'{"status":"ok"}', "application/json")
                elif self.path == "/readyz":
                    ok = ready_check()
                    body = json.dumps({"status": "ready" if ok else "not_ready"}).encode()
                    self._send(200 if ok else 503, body, "application/json")
                else:
                    self._send(404, b'{"code":"not_found"}', "application/json")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # probes every few seconds would drown the service log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="ops-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> OpsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
