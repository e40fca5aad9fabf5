"""Behaviour that needs real sockets or whole runs: client time-outs and seeded reproducibility."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from payments.psp_sim.app import create_app
from tests.psp_sim.helpers import audit, charge, set_faults
from tests.psp_sim.support import FakeClock, asgi_client, live_server, make_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHAOS: dict[str, Any] = {
    "error_before_commit": 0.2,
    "error_after_commit": 0.2,
    "ambiguous_error": 0.1,
    "rate_limit": 0.1,
}


async def test_timeout_after_commit_hangs_past_the_client_timeout(clock: FakeClock) -> None:
    app = create_app(make_settings(), clock=clock)
    with live_server(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=0.3) as client:
            await set_faults(client, timeout_after_commit=1.0, timeout_hang_s=0.8)
            with pytest.raises(httpx.ReadTimeout):
                await charge(client, "pay-1")
            # The PSP committed before hanging: the audit has it and the retry replays it.
            [movement] = await audit(client)
            assert movement["idempotency_key"] == "pay-1"
            await client.delete("/_sim/faults")
            retry = await charge(client, "pay-1")
            assert retry.status_code == 201
            assert retry.headers["idempotent-replayed"] == "true"
            assert retry.json()["id"] == movement["id"]


async def run_chaos(seed: int, faults: dict[str, Any]) -> list[tuple[int, bytes]]:
    clock = FakeClock(start=datetime(2025, 1, 1, tzinfo=UTC))
    async with asgi_client(create_app(make_settings(seed=seed), clock=clock)) as client:
        await set_faults(client, **faults)
        outcomes = []
        for n in range(40):
            response = await charge(client, f"key-{n}", "tok_declined" if n % 7 == 0 else "tok_ok")
            outcomes.append((response.status_code, response.content))
            clock.advance(1)
        outcomes.append((200, (await client.get("/_sim/audit")).content))
        return outcomes


async def test_same_seed_reproduces_the_run() -> None:
    first = await run_chaos(7, CHAOS)
    assert first == await run_chaos(7, CHAOS)
    assert len({status for status, _ in first}) >= 4  # the run did exercise several faults
    assert first != await run_chaos(8, CHAOS)
    # Seeding through the faults body is the same as seeding at start.
    assert first == await run_chaos(99, CHAOS | {"seed": 7})


async def test_delete_faults_restarts_the_seeded_sequence() -> None:
    async with asgi_client(create_app(make_settings(seed=5), clock=FakeClock())) as client:
        runs = []
        for run in range(2):
            await set_faults(client, error_before_commit=0.5)
            runs.append([(await charge(client, f"r{run}-{n}")).status_code for n in range(20)])
            await client.delete("/_sim/faults")
    assert runs[0] == runs[1]


async def test_a_reseed_never_reuses_movement_or_event_ids() -> None:
    """Regression (chaos seed crash/10): DELETE /_sim/faults restarted the id stream, the next charge got
    an earlier charge's id and replaced it in the log, so the audit lost a movement the PSP had made."""
    async with asgi_client(create_app(make_settings(seed=5), clock=FakeClock())) as client:
        ids = []
        for run in range(3):
            ids += [(await charge(client, f"r{run}-{n}")).json()["id"] for n in range(5)]
            await client.delete("/_sim/faults")
        audit = (await client.get("/_sim/audit")).json()["movements"]
    assert len(set(ids)) == 15
    assert sorted(m["id"] for m in audit) == sorted(ids)
