"""Read-only calls to the PSP: the movement under an idempotency key, and the settlement report.

Neither call can move money. Every answer that is not a clear "found" or "not found" is UNAVAILABLE,
because acting on a guess (expiring a payment the PSP did execute) would be worse than asking again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson

from payments.pspclient.http import PspHttp, PspTransportError
from payments.reconciler.policy import Lookup, LookupKind
from payments.schemas.money import MAX_AMOUNT


class PspReadClient:
    """The reconciler's read calls over the shared PSP adapter. Create it inside the event loop."""

    def __init__(self, base_url: str, *, timeout_s: float, max_connections: int = 32) -> None:
        self._http = PspHttp(base_url, timeout_s=timeout_s, max_connections=max_connections)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def lookup(self, key: str) -> Lookup:
        try:
            reply = await self._http.request("GET", f"/v1/movements/by-key/{quote(key, safe='')}")
        except PspTransportError as exc:
            # Sent or not, a read proves nothing without its answer: ask again later.
            return Lookup(LookupKind.UNAVAILABLE, detail=exc.detail)
        return classify_lookup(reply.status, reply.content)

    async def settlement_report(self, since: datetime | None = None) -> dict[str, Any]:
        """The PSP's report. Raises PspTransportError, PspStatusError (not a 200) or ValueError (not a JSON
        object); the caller skips the run and tries again later."""
        params = {"since": since.isoformat()} if since is not None else None
        body = await self._http.get_json("/v1/settlement-report", params=params)
        if not isinstance(body, dict):
            raise ValueError("the settlement report is not a JSON object")
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
        value = orjson.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
