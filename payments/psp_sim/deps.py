"""FastAPI dependency aliases: routes reach the per-app simulator through ``app.state``, never a global."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from payments.psp_sim.engine import SimResponse, Simulator


async def get_simulator(request: Request) -> Simulator:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request.
    simulator: Simulator = request.app.state.simulator
    return simulator


SimulatorDep = Annotated[Simulator, Depends(get_simulator)]


def to_response(sim: SimResponse) -> Response:
    return Response(
        content=sim.body, status_code=sim.status_code, headers=sim.headers, media_type=sim.media_type
    )


def json_response(model: BaseModel) -> Response:
    """Serialize with orjson, skipping FastAPI's re-validation of the return value: audit and settlement
    reports list every movement and would otherwise be validated twice, which is slow at benchmark sizes."""
    return Response(content=orjson.dumps(model.model_dump(mode="json")), media_type="application/json")
