"""Waiting for a service's HTTP probe (``/healthz``, ``/readyz``) to answer 200."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from payments.devstack.errors import DevstackError


def wait_http_ok(
    url: str, *, timeout_s: float = 60, interval_s: float = 0.2, still_alive: Callable[[], None] | None = None
) -> None:
    """Poll ``url`` until it answers 200. ``still_alive`` is called on every round and should raise if the
    process behind the URL died, so a crash fails at once instead of after the whole time-out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if still_alive is not None:
            still_alive()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(interval_s)
    raise DevstackError(f"{url} did not answer 200 within {timeout_s:.0f}s")
