"""The PSP's HTTP transport on aiohttp: one pooled session, bounded time-outs, and transport failures sorted
by the one thing that matters for money — could the request have reached the PSP?

* :class:`NotSent`: the connection was never established (refused, DNS failure, connect time-out, TLS
  handshake failure). No byte of the request left this process, so the PSP cannot have acted on it.
* :class:`MaybeSent`: everything else (read time-out, reset or close after the connection was up, a broken
  or truncated answer). The PSP may have acted on the request: only its answer to a replay on the same
  idempotency key can tell.

Why aiohttp: its pool hands out an idle connection in O(1), where httpcore's pool scanned every connection
(and ``poll()``-ed every idle one) on each request — quadratic work with a thousand calls in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from yarl import URL


class PspTransportError(Exception):
    """No HTTP answer. ``detail`` is the error's class name: log-safe, never a body or a URL."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotSent(PspTransportError):
    """The request certainly did not reach the PSP (the connection was never established)."""


class MaybeSent(PspTransportError):
    """The request may have reached the PSP and been acted upon (time-out or failure after connecting)."""


class PspStatusError(Exception):
    """An answer other than the expected success, from the calls that need one (reports, logs)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"PSP answered HTTP {status}")
        self.status = status


@dataclass(frozen=True)
class Reply:
    status: int
    content: bytes
    retry_after: str | None = None

    def json(self) -> Any:
        """The body as JSON (raises ``ValueError`` if it is not)."""
        return orjson.loads(self.content)


def sort_failure(exc: BaseException) -> PspTransportError:
    """The transport failure ``exc`` (an aiohttp or time-out error) as NotSent or MaybeSent. Pure."""
    detail = type(exc).__name__
    # ClientConnectorError (refused, unreachable, DNS, TLS handshake) is raised only while the connection is
    # being made; ConnectionTimeoutError only by the connect time-outs. Neither has sent a byte.
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return NotSent(detail)
    # ServerTimeoutError (socket read), asyncio's TimeoutError, ServerDisconnectedError, ClientOSError on a
    # connection already up (reset, broken pipe on a reused keep-alive connection), ClientPayloadError...
    return MaybeSent(detail)


class PspHttp:
    """A pooled HTTP client for one PSP base URL. Create it inside the event loop that uses it; ``aclose()``
    it on the way out.

    ``max_connections`` bounds the connections open at once (size it to the calls in flight: waiting for a
    pool slot has no time-out and must not look like a PSP fault). Idle connections are kept for
    ``keepalive_s``; aiohttp reuses them in O(1), so keeping many costs no CPU per request.
    """

    def __init__(
        self, base_url: str, *, timeout_s: float, max_connections: int, keepalive_s: float = 30.0
    ) -> None:
        if timeout_s <= 0 or max_connections < 1:
            raise ValueError("timeout_s must be > 0 and max_connections >= 1")
        self._base = base_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=max_connections, limit_per_host=0, keepalive_timeout=keepalive_s
            ),
            # Connecting and each socket read bounded by timeout_s (s); no total, no pool-wait bound.
            timeout=aiohttp.ClientTimeout(
                total=None, connect=None, sock_connect=timeout_s, sock_read=timeout_s
            ),
            auto_decompress=False,
            raise_for_status=False,
        )

    async def aclose(self) -> None:
        await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        """One HTTP exchange. ``path`` must already be percent-encoded. Raises NotSent or MaybeSent."""
        hdrs = dict(headers or {})
        data: bytes | None = None
        if body is not None:
            data = orjson.dumps(body)
            hdrs["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                # Encoded already (a key may hold '/', '?', '%'): yarl must not decode or re-encode it.
                method,
                URL(self._base + path, encoded=True),
                data=data,
                headers=hdrs,
                params=params,
            ) as resp:
                content = await resp.read()
                return Reply(resp.status, content, resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise sort_failure(exc) from exc

    async def get_json(self, path: str, *, params: Mapping[str, str] | None = None) -> Any:
        """GET that must answer 200 with JSON. Raises PspTransportError, PspStatusError or ValueError."""
        reply = await self.request("GET", path, params=params)
        if reply.status != 200:
            raise PspStatusError(reply.status)
        return reply.json()


def get_json_blocking(base_url: str, path: str, *, timeout_s: float) -> Any:
    """:meth:`PspHttp.get_json` for synchronous tools (the audit), blocking the caller until it is done.

    It runs on a short-lived loop of its own in a helper thread, so it also works when called from a
    coroutine (as tests do), where a second loop cannot run on the caller's thread."""

    async def fetch() -> Any:
        http = PspHttp(base_url, timeout_s=timeout_s, max_connections=1)
        try:
            return await http.get_json(path)
        finally:
            await http.aclose()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="psp-fetch") as pool:
        return pool.submit(asyncio.run, fetch()).result()
