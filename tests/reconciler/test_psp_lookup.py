"""PSP read calls: what a by-key lookup answer proves, and the client's transport behaviour.

``classify_lookup`` is pure; the client is exercised against real local servers (raw sockets that answer or
misbehave on purpose, and the real simulator app under uvicorn): no mocks, no broker.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest

from payments.devstack.ports import free_port
from payments.psp_sim.app import create_app
from payments.psp_sim.models import Movement, Problem
from payments.pspclient.http import PspStatusError
from payments.reconciler.policy import Lookup, LookupKind
from payments.reconciler.psp_lookup import PspReadClient, classify_lookup
from payments.reconciler.settlement_job import parse_report
from payments.schemas.money import MAX_AMOUNT
from tests.psp_sim.support import live_server, make_settings
from tests.pspclient.support import Answer, Behaviour, answering, raw_server

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def movement(**overrides: object) -> bytes:
    values: dict[str, object] = {
        "id": "mv_1",
        "kind": "transfer",
        "status": "succeeded",
        "amount": 1250,
        "currency": "EUR",
        "idempotency_key": "pay_1",
        "created_at": WHEN,
        "payee": "payee_1",
    }
    values.update(overrides)
    return Movement.model_validate(values).model_dump_json().encode()


def raw(doc: object) -> bytes:
    return json.dumps(doc).encode()


def problem(code: str, status: int = 404) -> bytes:
    return Problem(title="Not Found", status=status, code=code).model_dump_json().encode()


# ---- classify_lookup -----------------------------------------------------------------------------------------


def test_a_succeeded_movement_is_found() -> None:
    assert classify_lookup(200, movement()) == Lookup(
        LookupKind.FOUND, succeeded=True, movement_id="mv_1", amount=1250, failure_code=None
    )


def test_a_failed_movement_is_found_with_its_failure_code() -> None:
    body = movement(id="mv_2", status="failed", failure_code="card_declined", amount=900)
    assert classify_lookup(200, body) == Lookup(
        LookupKind.FOUND, succeeded=False, movement_id="mv_2", amount=900, failure_code="card_declined"
    )


def test_the_psps_own_not_found_problem_is_not_found() -> None:
    assert classify_lookup(404, problem("not_found")) == Lookup(LookupKind.NOT_FOUND)


@pytest.mark.parametrize(
    ("status", "content", "detail"),
    [
        (404, b"<html>404 Not Found</html>", "404_without_problem"),  # a proxy or a wrong path
        (404, b"", "404_without_problem"),
        (404, problem("route_not_found"), "404_without_problem"),
        (404, raw(["not_found"]), "404_without_problem"),
        (500, problem("internal_error", 500), "500"),
        (502, b"<html>Bad gateway</html>", "502"),
        (503, problem("service_unavailable", 503), "503"),
        (429, problem("rate_limited", 429), "429"),
        (201, movement(), "201"),  # only a 200 is a lookup answer
        (302, b"", "302"),
        (400, problem("not_found", 400), "400"),
    ],
)
def test_anything_but_a_clear_answer_is_unavailable(status: int, content: bytes, detail: str) -> None:
    # detail is log-safe: a status or a reason, never the body
    assert classify_lookup(status, content) == Lookup(LookupKind.UNAVAILABLE, detail=detail)


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"not json", "unreadable_body"),
        (b"\xff\xfe", "unreadable_body"),
        (raw([1, 2]), "unreadable_body"),
        (raw({"status": "succeeded", "amount": 1}), "unreadable_movement"),
        (raw({"id": "", "status": "succeeded"}), "unreadable_movement"),
        (raw({"id": 42, "status": "succeeded"}), "unreadable_movement"),
        (raw({"id": "m" * 256, "status": "succeeded"}), "unreadable_movement"),
        (raw({"id": "mv_1", "status": "pending"}), "unknown_status"),
        (raw({"id": "mv_1", "status": "SUCCEEDED"}), "unknown_status"),
        (raw({"id": "mv_1"}), "unknown_status"),
    ],
)
def test_a_200_that_proves_nothing_is_unavailable(content: bytes, detail: str) -> None:
    assert classify_lookup(200, content) == Lookup(LookupKind.UNAVAILABLE, detail=detail)


def test_the_longest_acceptable_movement_id_is_found() -> None:
    lookup = classify_lookup(200, raw({"id": "m" * 255, "status": "succeeded", "amount": 5}))
    assert lookup.kind is LookupKind.FOUND
    assert lookup.movement_id == "m" * 255


@pytest.mark.parametrize("amount", [0, -5, MAX_AMOUNT + 1, True, "1250", 12.5, None, [1]])
def test_an_absurd_amount_is_dropped_but_the_movement_still_counts(amount: object) -> None:
    # The movement and its status are what resolve the operation; the amount is only reported.
    lookup = classify_lookup(200, raw({"id": "mv_1", "status": "succeeded", "amount": amount}))
    assert lookup == Lookup(LookupKind.FOUND, succeeded=True, movement_id="mv_1", amount=None)


def test_the_largest_amount_is_kept() -> None:
    lookup = classify_lookup(200, raw({"id": "mv_1", "status": "succeeded", "amount": MAX_AMOUNT}))
    assert lookup.amount == MAX_AMOUNT


@pytest.mark.parametrize(("code", "kept"), [("x" * 64, "x" * 64), ("x" * 65, None), (17, None)])
def test_a_failure_code_too_long_for_the_outcome_command_is_dropped(code: object, kept: str | None) -> None:
    lookup = classify_lookup(200, raw({"id": "mv_1", "status": "failed", "failure_code": code}))
    assert lookup.kind is LookupKind.FOUND
    assert not lookup.succeeded
    assert lookup.failure_code == kept


# ---- PspReadClient ---------------------------------------------------------------------------------------------


@asynccontextmanager
async def client_with(answer: Answer) -> AsyncIterator[PspReadClient]:
    """A client of a real local server answering ``answer(method, raw target)``."""
    async with raw_server(answering(answer)) as url:
        client = PspReadClient(url, timeout_s=2.0)
        try:
            yield client
        finally:
            await client.aclose()


async def test_the_client_looks_up_the_key_and_classifies_the_answer() -> None:
    seen: list[tuple[str, str]] = []

    def answer(method: str, target: str) -> tuple[int, bytes]:
        seen.append((method, target))
        return 200, movement(id="mv_9", amount=77)

    async with client_with(answer) as client:
        lookup = await client.lookup("pay_1")
    assert lookup == Lookup(LookupKind.FOUND, succeeded=True, movement_id="mv_9", amount=77)
    assert seen == [("GET", "/v1/movements/by-key/pay_1")]


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("acct/1/pay 1", "/v1/movements/by-key/acct%2F1%2Fpay%201"),
        ("../admin", "/v1/movements/by-key/..%2Fadmin"),
        ("a?b#c", "/v1/movements/by-key/a%3Fb%23c"),
        ("100%", "/v1/movements/by-key/100%25"),
    ],
)
async def test_keys_are_percent_encoded_into_one_path_segment(key: str, path: str) -> None:
    seen: list[str] = []

    def answer(method: str, target: str) -> tuple[int, bytes]:
        seen.append(target)
        return 404, problem("not_found")

    async with client_with(answer) as client:
        assert (await client.lookup(key)).kind is LookupKind.NOT_FOUND
    assert seen == [path]


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client gives up
    writer.close()


@pytest.mark.parametrize(
    ("behaviour", "detail"),
    [
        (None, {"ClientConnectorError"}),  # refused
        # Closed before or while the request is written: which one depends on the race.
        (_close_at_once, {"ServerDisconnectedError", "ClientOSError"}),
        (_never_answer, {"SocketTimeoutError"}),
    ],
)
async def test_transport_errors_are_unavailable(behaviour: Behaviour | None, detail: set[str]) -> None:
    async def lookup(url: str) -> Lookup:
        client = PspReadClient(url, timeout_s=0.3)
        try:
            return await client.lookup("pay_1")
        finally:
            await client.aclose()

    if behaviour is None:
        got = await lookup(f"http://127.0.0.1:{free_port()}")
    else:
        async with raw_server(behaviour) as url:
            got = await lookup(url)
    assert got.kind is LookupKind.UNAVAILABLE
    assert got.detail in detail


async def test_the_settlement_report_is_fetched_and_http_errors_raise() -> None:
    seen: list[str] = []
    answers = [
        (200, json.dumps({"generated_at": WHEN.isoformat(), "movements": []}).encode()),
        (503, problem("outage", 503)),
        (200, b"[]"),
    ]

    def answer(method: str, target: str) -> tuple[int, bytes]:
        seen.append(target)
        return answers.pop(0)

    async with client_with(answer) as client:
        body = await client.settlement_report(since=WHEN)
        with pytest.raises(PspStatusError):
            await client.settlement_report()
        with pytest.raises(ValueError, match="not a JSON object"):
            await client.settlement_report()
    assert body == {"generated_at": WHEN.isoformat(), "movements": []}
    assert seen[0] == "/v1/settlement-report?since=" + quote(WHEN.isoformat(), safe=":")
    assert seen[1] == "/v1/settlement-report"


async def test_against_the_real_simulator_in_process() -> None:
    """The simulator's own answers classify as expected, including a key with '/' in it."""
    with live_server(create_app(make_settings())) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as admin:
            resp = await admin.post(
                "/_sim/inject",
                json={
                    "kind": "transfer",
                    "amount": 4321,
                    "currency": "EUR",
                    "payee": "payee_1",
                    "idempotency_key": "acct/1:pay 1",
                    "send_webhook": False,
                },
            )
            assert resp.status_code == 201, resp.text
            injected = resp.json()
        client = PspReadClient(url, timeout_s=5.0)
        try:
            found = await client.lookup("acct/1:pay 1")
            missing = await client.lookup("acct/1:pay 2")
            prefix = await client.lookup("acct")  # must not match a prefix of the '/'-containing key
            rows, generated_at = parse_report(await client.settlement_report())
        finally:
            await client.aclose()
    assert found == Lookup(LookupKind.FOUND, succeeded=True, movement_id=injected["id"], amount=4321)
    assert missing == Lookup(LookupKind.NOT_FOUND)
    assert prefix == Lookup(LookupKind.NOT_FOUND)
    assert [(r.id, r.idempotency_key, r.amount, r.status, r.kind) for r in rows] == [
        (injected["id"], "acct/1:pay 1", 4321, "succeeded", "transfer")
    ]
    assert rows[0].created_at_ms <= generated_at
