"""Request helpers shared by the PSP simulator's HTTP tests."""

from __future__ import annotations

from typing import Any

import httpx


async def charge(
    client: httpx.AsyncClient, key: str, method: str = "tok_ok", amount: int = 1250, **extra: Any
) -> httpx.Response:
    body = {"amount": amount, "currency": "EUR", "payment_method": method, **extra}
    return await client.post("/v1/charges", json=body, headers={"Idempotency-Key": key})


async def transfer(client: httpx.AsyncClient, key: str, amount: int = 500, **extra: Any) -> httpx.Response:
    body = {"amount": amount, "currency": "EUR", "payee": "payee_42", **extra}
    return await client.post("/v1/transfers", json=body, headers={"Idempotency-Key": key})


async def refund(client: httpx.AsyncClient, key: str, charge_id: str, amount: int) -> httpx.Response:
    body = {"charge_id": charge_id, "amount": amount}
    return await client.post("/v1/refunds", json=body, headers={"Idempotency-Key": key})


async def set_faults(client: httpx.AsyncClient, **faults: Any) -> dict[str, Any]:
    response = await client.post("/_sim/faults", json=faults)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def audit(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/_sim/audit")
    assert response.status_code == 200
    movements: list[dict[str, Any]] = response.json()["movements"]
    return movements
