"""Read-only calls to the PSP: the movement under an idempotency key, and the settlement report.

Neither call can move money. Every answer that is not a clear "found" or "not found" is UNAVAILABLE,
because acting on a guess (expiring a payment the PSP did execute) would be worse than asking again.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from payments.reconciler.policy import Lookup, LookupKind
from payments.schemas.money import MAX_AMOUNT


class PspReadClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        max_connections: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def lookup(self, key: str) -> Lookup:
        try:
            resp = await self._http.get(f"/v1/movements/by-key/{quote(key, safe='')}")
        except httpx.TransportError as exc:
            return Lookup(LookupKind.UNAVAILABLE, detail=type(exc).__name__)
        return classify_lookup(resp.status_code, resp.content)

    async def settlement_report(self, since: datetime | None = None) -> dict[str, Any]:
        """The PSP's report (raises httpx errors; the caller skips the run and tries again later)."""
        params = {"since": since.isoformat()} if since is not None else None
        resp = await self._http.get("/v1/settlement-report", params=params)
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body


def classify_lookup(status: int, content: bytes) -> Lookup:
    """What a by-key lookup answer proves. Pure."""
    if status == 404:
        body = _json(content)
        # Only the PSP's own "nothing under this key" counts; a 404 from a proxy or a wrong path does not.
        if body is not None and body.get("code") == "not_found":
            return Lookup(LookupKind.NOT_FOUND)
        return Lookup(LookupKind.UNAVAILABLE, detail="404_without_problem")
    if status != 200:
        return Lookup(LookupKind.UNAVAILABLE, detail=str(status))
    body = _json(content)
    if body is None:
        return Lookup(LookupKind.UNAVAILABLE, detail="unreadable_body")
    movement_id, state = body.get("id"), body.get("status")
    if not isinstance(movement_id, str) or not 0 < len(movement_id) <= 255:
        return Lookup(LookupKind.UNAVAILABLE, detail="unreadable_movement")
    if state not in ("succeeded", "failed"):
        return Lookup(LookupKind.UNAVAILABLE, detail="unknown_status")
    amount = body.get("amount")
    code = body.get("failure_code")
    return Lookup(
        LookupKind.FOUND,
        succeeded=state == "succeeded",
        movement_id=movement_id,
        amount=amount
        if isinstance(amount, int) and not isinstance(amount, bool) and 0 < amount <= MAX_AMOUNT
        else None,
        failure_code=code if isinstance(code, str) and len(code) <= 64 else None,
    )


def _json(content: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
