"""The baseline's PSP client: one transfer per payment, with the payment id as the Idempotency-Key.

It uses the same HTTP transport as our psp-caller (``payments.pspclient.http``: aiohttp, O(1) pool), so the
comparison measures the designs, not two HTTP clients. Create it inside the event loop (the app's lifespan).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from payments.pspclient.http import PspHttp, PspTransportError


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
        self._http = PspHttp(base_url, timeout_s=timeout_s, max_connections=max_connections)

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
            reply = await self._http.request(
                "POST", "/v1/transfers", body=body, headers={"Idempotency-Key": payment_id}
            )
        except PspTransportError:
            return PspAnswer(PspResult.UNKNOWN)
        if reply.status not in (201, 402):
            return PspAnswer(PspResult.UNKNOWN)
        try:
            doc = reply.json()
        except ValueError:
            return PspAnswer(PspResult.UNKNOWN)
        if reply.status == 201:
            return PspAnswer(PspResult.SUCCEEDED, movement_id=str(doc.get("id")))
        return PspAnswer(
            PspResult.FAILED, movement_id=str(doc.get("id")), failure_code=doc.get("failure_code")
        )
