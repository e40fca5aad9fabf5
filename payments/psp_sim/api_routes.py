"""The PSP's public API under ``/v1``: what our psp-caller and reconciler talk to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from starlette.responses import Response

from payments.psp_sim.deps import SimulatorDep, json_response, to_response
from payments.psp_sim.idempotency import parse_idempotency_key
from payments.psp_sim.models import (
    ChargeRequest,
    Movement,
    Problem,
    RefundRequest,
    SettlementReport,
    TransferRequest,
)

router = APIRouter(prefix="/v1", tags=["psp"])

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Required; ≤255 characters, quoted or bare"),
]

_MONEY_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"model": Movement, "description": "Movement succeeded"},
    402: {"model": Movement, "description": "Movement failed (declined); body has failure_code"},
    400: {"model": Problem, "description": "Missing Idempotency-Key or invalid input; nothing stored"},
    409: {"model": Problem, "description": "Same key in flight; retry later"},
    422: {"model": Problem, "description": "Key reused with other parameters, or invalid body"},
    429: {"model": Problem, "description": "Rate limited (injected); nothing recorded"},
    500: {"model": Problem, "description": "Injected error, before or after commit"},
    502: {"description": "Injected ambiguous error (HTML); may or may not have committed"},
    503: {"model": Problem, "description": "Injected outage; nothing recorded"},
}


@router.post("/charges", status_code=201, response_model=Movement, responses=_MONEY_RESPONSES)
async def create_charge(
    body: ChargeRequest, simulator: SimulatorDep, key: IdempotencyKeyHeader = None
) -> Response:
    """Charge a test card token: ``tok_ok``, ``tok_declined``, ``tok_insufficient_funds``, ``tok_expired_card``."""
    return to_response(await simulator.move("charge", parse_idempotency_key(key), body))


@router.post("/transfers", status_code=201, response_model=Movement, responses=_MONEY_RESPONSES)
async def create_transfer(
    body: TransferRequest, simulator: SimulatorDep, key: IdempotencyKeyHeader = None
) -> Response:
    """Pay out to a payee; every payee id succeeds."""
    return to_response(await simulator.move("transfer", parse_idempotency_key(key), body))


@router.post("/refunds", status_code=201, response_model=Movement, responses=_MONEY_RESPONSES)
async def create_refund(
    body: RefundRequest, simulator: SimulatorDep, key: IdempotencyKeyHeader = None
) -> Response:
    """Refund part or all of what is left of a succeeded charge."""
    return to_response(await simulator.move("refund", parse_idempotency_key(key), body))


@router.get(
    # :path so that keys containing "/" can be looked up too (percent-encoded by the client).
    "/movements/by-key/{idempotency_key:path}",
    response_model=Movement,
    responses={404: {"model": Problem, "description": "Nothing committed under this key (yet)"}},
)
async def movement_by_key(idempotency_key: str, simulator: SimulatorDep) -> Response | Movement:
    """The movement made under a key, without ever moving money: how a reconciler resolves unknowns."""
    gated = simulator.read_gate()
    if gated is not None:
        return to_response(gated)
    return simulator.lookup(idempotency_key)


@router.get("/settlement-report", response_model=SettlementReport)
async def settlement_report(
    simulator: SimulatorDep,
    since: Annotated[datetime | None, Query(description="Inclusive; naive times are UTC")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive; naive times are UTC")] = None,
) -> Response:
    """Every movement with its final status, in commit order, for settlement matching."""
    gated = simulator.read_gate()
    if gated is not None:
        return to_response(gated)
    return json_response(simulator.settlement(since, until))
