"""PSP read calls: what a by-key lookup answer proves, and the client's transport behaviour.

``classify_lookup`` is pure; the client is exercised with ``httpx.MockTransport`` (and once against the real
simulator app in-process over ``httpx.ASGITransport``): no network, no broker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from payments.psp_sim.app import create_app
from payments.psp_sim.models import Movement, Problem
from payments.reconciler.policy import Lookup, LookupKind
from payments.reconciler.psp_lookup import PspReadClient, classify_lookup
from payments.reconciler.settlement_job import parse_report
from payments.schemas.money import MAX_AMOUNT
from tests.psp_sim.support import make_settings

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


def client_with(handler: Callable[[httpx.Request], httpx.Response]) -> PspReadClient:
    return PspReadClient("http://psp.test", timeout_s=2.0, transport=httpx.MockTransport(handler))


async def test_the_client_looks_up_the_key_and_classifies_the_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=movement(id="mv_9", amount=77))

    client = client_with(handler)
    try:
        lookup = await client.lookup("pay_1")
    finally:
        await client.aclose()
    assert lookup == Lookup(LookupKind.FOUND, succeeded=True, movement_id="mv_9", amount=77)
    assert [(r.method, r.url.raw_path) for r in seen] == [("GET", b"/v1/movements/by-key/pay_1")]


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("acct/1/pay 1", b"/v1/movements/by-key/acct%2F1%2Fpay%201"),
        ("../admin", b"/v1/movements/by-key/..%2Fadmin"),
        ("a?b#c", b"/v1/movements/by-key/a%3Fb%23c"),
    ],
)
async def test_keys_are_percent_encoded_into_one_path_segment(key: str, path: bytes) -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(404, content=problem("not_found"))

    client = client_with(handler)
    try:
        assert (await client.lookup(key)).kind is LookupKind.NOT_FOUND
    finally:
        await client.aclose()
    assert seen == [path]


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow connect"),
        httpx.ReadTimeout("slow read"),
        httpx.RemoteProtocolError("dropped"),
    ],
)
async def test_transport_errors_are_unavailable(error: httpx.TransportError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    client = client_with(handler)
    try:
        lookup = await client.lookup("pay_1")
    finally:
        await client.aclose()
    assert lookup == Lookup(LookupKind.UNAVAILABLE, detail=type(error).__name__)


async def test_the_settlement_report_is_fetched_and_http_errors_raise() -> None:
    seen: list[httpx.URL] = []
    answers = [
        httpx.Response(200, json={"generated_at": WHEN.isoformat(), "movements": []}),
        httpx.Response(503, content=problem("outage", 503)),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return answers.pop(0)

    client = client_with(handler)
    try:
        body = await client.settlement_report(since=WHEN)
        with pytest.raises(httpx.HTTPStatusError):
            await client.settlement_report()
    finally:
        await client.aclose()
    assert body == {"generated_at": WHEN.isoformat(), "movements": []}
    assert seen[0].path == "/v1/settlement-report"
    assert seen[0].params.get("since") == WHEN.isoformat()
    assert "since" not in seen[1].params


async def test_against_the_real_simulator_in_process() -> None:
    """The simulator's own answers classify as expected, including a key with '/' in it."""
    app = create_app(make_settings())
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://psp.test") as admin:
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
        client = PspReadClient("http://psp.test", timeout_s=5.0, transport=transport)
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
    assert rows[0].created_at <= generated_at
