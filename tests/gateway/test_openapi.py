"""The OpenAPI document in the shape client generators need, and the self-hosted ``/docs`` and ``/redoc``.

No broker or Redis: the document and the docs pages need no services (the app's lifespan is not run)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from payments.gateway.app import create_app
from payments.gateway.settings import GatewaySettings

MONEY_MOVING = {"create_payment", "create_top_up", "create_adjustment"}
PREFER_ROUTES = MONEY_MOVING | {"open_account", "add_member", "remove_member"}
OPERATION_IDS = {
    "open_account",
    "get_account",
    "create_adjustment",
    "add_member",
    "remove_member",
    "create_payment",
    "list_account_payments",
    "get_payment",
    "create_top_up",
    "list_account_top_ups",
    "get_top_up",
    "list_account_ledger",
    "receive_psp_webhook",
    "get_health",
    "get_readiness",
    "get_metrics",
}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(GatewaySettings())


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for ops in spec["paths"].values() for op in ops.values()}


def header(op: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [p for p in op.get("parameters", []) if p["in"] == "header" and p["name"] == name]
    assert isinstance(found, dict)
    return found


def test_operation_ids_are_the_stable_ones(spec: dict[str, Any]) -> None:
    assert set(operations(spec)) == OPERATION_IDS
    assert spec["info"]["version"]
    assert spec["servers"]


def test_idempotency_key_required_exactly_where_the_server_demands_it(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    for op_id in PREFER_ROUTES:
        key = header(ops[op_id], "Idempotency-Key")
        assert key["required"] is (op_id in MONEY_MOVING), op_id
        assert key["schema"]["type"] == "string"
        assert key["schema"]["maxLength"] == 257  # 255 + the quotes of the sf-string form
        pattern = re.compile(key["schema"]["pattern"])
        assert pattern.match("order-42")
        assert pattern.match('"order 42"')
        assert not pattern.match("two words")
        assert not pattern.match("x" * 256)
        assert "255" in key["description"]
        assert "quoted" in key["description"]


def test_prefer_is_one_string_header(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    for op_id in PREFER_ROUTES:
        assert header(ops[op_id], "Prefer")["schema"] == {"type": "string", "examples": ["wait=10"]}
    array_headers = [
        (op_id, p["name"])
        for op_id, op in ops.items()
        for p in op.get("parameters", [])
        if p["in"] == "header" and "array" in str(p["schema"])
    ]
    assert array_headers == []


def test_errors_are_problem_documents_under_their_media_type(spec: dict[str, Any]) -> None:
    for op_id, op in operations(spec).items():
        for status, response in op["responses"].items():
            if int(status) < 400 or op_id == "get_readiness":
                continue
            assert set(response["content"]) == {"application/problem+json"}, (op_id, status)
            media = response["content"]["application/problem+json"]
            assert media["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert all(ex["value"]["status"] == int(status) for ex in media["examples"].values())
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    assert problem["additionalProperties"] is True  # extension members
    assert "insufficient_funds" in spec["components"]["schemas"]["ErrorCode"]["enum"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_response_headers_are_documented(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    for op_id, op in ops.items():
        for status in ("429", "503"):
            if status in op["responses"] and op_id != "get_readiness":
                assert op["responses"][status]["headers"]["Retry-After"]["required"], (op_id, status)
    for op_id in MONEY_MOVING:
        responses = ops[op_id]["responses"]
        assert "Retry-After" in responses["409"]["headers"]  # idempotency_key_in_use
        for status in ("201", "202", "402"):
            assert {"Idempotent-Replayed", "Preference-Applied"} <= set(responses[status]["headers"])
    for op_id in ("create_payment", "create_top_up", "open_account"):
        assert ops[op_id]["responses"]["201"]["headers"]["Location"]["required"]
    assert "Location" not in ops["create_adjustment"]["responses"]["201"].get("headers", {})
    assert "WWW-Authenticate" in ops["get_account"]["responses"]["401"]["headers"]
    assert "Payments-Warning" in ops["create_payment"]["responses"]["202"]["headers"]


def test_a_card_number_in_the_url_is_documented_wherever_the_url_has_parameters(spec: dict[str, Any]) -> None:
    for op_id, op in operations(spec).items():
        if not any(p["in"] in ("path", "query") for p in op.get("parameters", [])):
            continue
        examples = op["responses"]["422"]["content"]["application/problem+json"]["examples"]
        assert "card_number_not_allowed" in examples, op_id


def test_statuses_are_enums_and_every_public_field_is_described(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert "succeeded" in schemas["OperationState"]["enum"]
    assert "pending" in schemas["OperationState"]["enum"]
    for model in ("PaymentOut", "TopUpOut", "AdjustmentOut"):
        assert schemas[model]["properties"]["status"]["$ref"].endswith("/OperationState")
    undocumented = [
        (name, field)
        for name, schema in schemas.items()
        for field, prop in schema.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undocumented == []
    # Scalars carry an example (objects and lists are exemplified by their items' fields).
    no_example = [
        (name, field)
        for name, schema in schemas.items()
        for field, prop in schema.get("properties", {}).items()
        if "examples" not in prop and prop.get("type") not in ("array", "object") and "anyOf" not in prop
    ]
    assert no_example == []


LOCAL_URL = re.compile(
    r"""(?:src|href)=["']([^"']+)["']|(?:url|openapi_url)["']?\s*[:=]\s*["']([^"']+)["']"""
)


@pytest.mark.parametrize(("page", "assets"), [("/docs", 3), ("/redoc", 2)])
async def test_docs_pages_load_their_assets_from_this_server(app: FastAPI, page: str, assets: int) -> None:
    types = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        html = (await client.get(page)).text
        urls = {a or b for a, b in LOCAL_URL.findall(html)}
        assert urls, html
        assert not [u for u in urls if "//" in u], urls  # no CDN, no fonts service
        fetched = [u for u in urls if u.startswith("/docs/assets/")]
        assert len(fetched) == assets, urls
        for url in [*fetched, "/openapi.json"]:
            answer = await client.get(url)
            assert answer.status_code == 200, url
            (kind,) = [t for ext, t in types.items() if url.endswith(ext)]
            assert kind in answer.headers["content-type"], (url, answer.headers["content-type"])
            assert len(answer.content) > 1000
