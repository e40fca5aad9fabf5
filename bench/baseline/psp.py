"""The baseline's PSP client: one transfer per payment, with the payment id as the Idempotency-Key."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import httpx
import orjson


class PspResult(StrEnum):
    SUCCEEDED = "succeeded"  # 201
    FAILED = "failed"  # 402: the PSP refused the transfer
    UNKNOWN = "unknown"  # anything else: time-out, 5xx; the transfer may or may not have happened


@dataclass(frozen=True)
class PspAnswer:
    result: PspResult
    movement_id: str | None = None
    failure_code: str | None = None


class PspClient:
    def __init__(self, base_url: str, *, timeout_s: float, max_connections: int) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, pool=None),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def transfer(
        self, payment_id: str, account_id: str, amount: int, currency: str, payee: str
    ) -> PspAnswer:
        body = {
            "amount": amount,
            "currency": currency,
            "payee": payee,
            "reference": payment_id,
            "metadata": {"account_id": account_id, "op_id": payment_id},
        }
        try:
            resp = await self._http.post(
                "/v1/transfers", content=orjson.dumps(body),
                headers={"Idempotency-Key": payment_id, "Content-Type": "application/json"},
            )  # fmt: skip
        except httpx.TransportError:
            return PspAnswer(PspResult.UNKNOWN)
        if resp.status_code not in (201, 402):
            return PspAnswer(PspResult.UNKNOWN)
        doc = orjson.loads(resp.content)
        if resp.status_code == 201:
            return PspAnswer(PspResult.SUCCEEDED, movement_id=str(doc.get("id")))
        return PspAnswer(
            PspResult.FAILED, movement_id=str(doc.get("id")), failure_code=doc.get("failure_code")
        )
