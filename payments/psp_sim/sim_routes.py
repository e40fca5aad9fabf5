"""Test controls under ``/_sim``: faults, audit, orphans, reset, webhook endpoint. Never faulted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response

from payments.psp_sim.deps import SimulatorDep, json_response, to_response
from payments.psp_sim.faults import FaultConfig
from payments.psp_sim.models import AuditReport, InjectRequest, Movement, WebhookEndpointConfig, WebhookStatus

router = APIRouter(prefix="/_sim", tags=["simulation"])


@router.get("/faults", response_model=FaultConfig)
async def get_faults(simulator: SimulatorDep) -> FaultConfig:
    return simulator.faults()


@router.post("/faults", response_model=FaultConfig)
async def update_faults(
    simulator: SimulatorDep,
    patch: dict[str, Any] = Body(  # noqa: B008 - FastAPI's way to declare a free-form JSON object body
        openapi_examples={
            "chaos": {
                "value": {
                    "timeout_after_commit": 0.1,
                    "error_before_commit": 0.05,
                    "error_after_commit": 0.05,
                    "webhook_duplicate": 0.2,
                    "webhook_reorder": 0.2,
                    "latency_ms": {"median": 1500, "max": 3000},
                    "seed": 7,
                }
            }
        }
    ),
) -> FaultConfig:
    """Merge a partial configuration; ``seed`` reseeds, ``outage_seconds`` starts an outage window."""
    try:
        return simulator.update_faults(patch)
    except ValidationError as exc:
        # Reported like any invalid body (422 validation_error); the configuration is left unchanged.
        raise RequestValidationError(exc.errors()) from exc


@router.delete("/faults", response_model=FaultConfig)
async def reset_faults(simulator: SimulatorDep) -> FaultConfig:
    return simulator.reset_faults()


@router.get("/audit", response_model=AuditReport)
async def audit(simulator: SimulatorDep) -> Response:
    """Every movement ever recorded, including those whose response a fault lost, and orphans."""
    return json_response(simulator.audit())


@router.post("/inject", status_code=201, response_model=Movement)
async def inject(body: InjectRequest, simulator: SimulatorDep) -> Response:
    return to_response(simulator.inject(body))


@router.post("/reset", status_code=204)
async def reset(simulator: SimulatorDep) -> Response:
    simulator.reset()
    return Response(status_code=204)


@router.get("/webhooks", response_model=WebhookStatus)
async def webhook_status(simulator: SimulatorDep) -> WebhookStatus:
    """The endpoint, deliveries still queued, and the most recent delivery attempts."""
    return simulator.webhook_status()


@router.put("/webhooks", response_model=WebhookStatus)
async def set_webhook_endpoint(body: WebhookEndpointConfig, simulator: SimulatorDep) -> WebhookStatus:
    simulator.set_webhook_endpoint(body.url, body.secret)
    return simulator.webhook_status()
