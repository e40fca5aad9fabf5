"""The gateway's OpenAPI document, in a shape that client generators accept.

* ``responses(...)`` builds a route's ``responses=`` from its success statuses and the error codes it can
  answer: one problem+json entry per status (several codes may share one, each with an example), and the
  response headers each status carries (``Retry-After``, ``Idempotent-Replayed``, ``Location``,
  ``Preference-Applied``, ``WWW-Authenticate``).
* ``install_openapi(app)`` finishes what FastAPI generates: ``Idempotency-Key`` required on the routes whose
  dependency demands it (``x-required``: the dependency answers 400 ``idempotency_key_missing`` itself, so
  FastAPI must not treat it as required), ``Prefer`` as one string (declared as a list so that every ``Prefer`` header line
  is read; generators skip operations with array headers), problem documents only under
  ``application/problem+json``, and no FastAPI ``HTTPValidationError`` (our 422 is a problem document).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from payments.gateway.idempotency_keys import MAX_KEY_LENGTH
from payments.gateway.problems import PROBLEM_JSON, TITLES, problem_document, status_for
from payments.schemas.api import Problem
from payments.schemas.errors import ErrorCode

Responses = dict[int | str, dict[str, Any]]

# The document's version; the path's ``/v1`` is the compatibility promise, this counts its revisions.
API_VERSION = "1.1.0"
API_DESCRIPTION = """\
Shared accounts that several members pay from concurrently; every PSP money movement happens exactly once.

* **Authentication**: `Authorization: Bearer pk_...` (an API key; admins open accounts and manage members).
* **Money is integer minor units** (`1250` EUR = 12.50 EUR); currencies are ISO 4217 codes.
* **Idempotency**: payments, top-ups and adjustments need an `Idempotency-Key` (<= 255 printable ASCII,
  quoted or bare); a retry with the same key and body replays the first answer with
  `Idempotent-Replayed: true`, the same key with another body is 422 `idempotency_key_reused`.
* **`Prefer: wait=N`** (N <= 10 s) waits for the final result (201 or 402) instead of answering 202 at once;
  `Preference-Applied` says it was honoured.
* **Errors** are RFC 9457 `application/problem+json` documents with a stable `code`; 409 (key in use), 429
  and 503 carry `Retry-After`.
* Reads are eventually consistent: an operation accepted a moment ago may not be listed yet.
"""

_RETRY_AFTER_DOC = "seconds to wait before retrying (RFC 9110 §10.2.3)"
_RETRY_AFTER: dict[str, Any] = {
    "description": _RETRY_AFTER_DOC,
    "schema": {"type": "integer", "minimum": 0, "examples": [1]},
}
_REPLAYED = {
    "description": "`true` when this is the stored answer to an earlier request with the same "
    "Idempotency-Key (replayed byte for byte)",
    "schema": {"type": "string", "enum": ["true"]},
}
_PREFERENCE_APPLIED = {
    "description": "`wait=N` (RFC 7240): the `Prefer: wait` was honoured, N the seconds applied (clamped "
    "to the server's maximum)",
    "schema": {"type": "string", "pattern": r"^wait=[0-9]+$", "examples": ["wait=10"]},
}
_LOCATION = {
    "description": "the path of the created resource",
    "required": True,
    "schema": {"type": "string", "examples": ["/v1/payments/pay_0d6f3b8a1c2e4f5a6b7c8d9e0f"]},
}
_PAYMENTS_WARNING = {
    "description": '`299 - "possible retry with a fresh Idempotency-Key..."`: this looks like a retry of an '
    "earlier request (same caller, account, amount and payee within seconds) under a new key, which would "
    "pay twice; answered normally all the same",
    "schema": {"type": "string"},
}
_WWW_AUTHENTICATE = {"description": "`Bearer`", "required": True, "schema": {"type": "string"}}

# Statuses an intake answer can have once the request was executed: these are stored under the key,
# replayed with ``Idempotent-Replayed``, and echo ``Preference-Applied`` (the processor's decline 402 or a
# rejection's 403/404/422 included). 400/401/409/429/503 come before execution and are never stored.
_ANSWER_STATUSES = frozenset({200, 201, 202, 402, 403, 404, 422})

_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    # A quoted key (RFC 8941 sf-string) has two more characters than the key itself.
    "maxLength": MAX_KEY_LENGTH + 2,
    "pattern": r'^(?:[!#-\[\]-~]{1,255}|"[ !#-\[\]-~]{1,255}")$',
    "examples": ["order-42-attempt-1"],
}


def responses(
    success: dict[int, tuple[type[BaseModel], str]],
    *codes: ErrorCode,
    query_codes: Iterable[ErrorCode] = (),
    keyed: bool = False,
    prefer: bool = False,
    location: Iterable[int] = (),
) -> Responses:
    """The ``responses=`` of one route.

    ``success``: status → (model, description), the decorator's own status included; ``codes``: the error
    codes the route can answer (``query_codes`` answer 400: they concern the query string, see
    ``InvalidQuery``); ``keyed``: the route takes an Idempotency-Key, so answers may be replays;
    ``prefer``: it honours ``Prefer: wait``; ``location``: the success statuses that carry ``Location``."""
    out: Responses = {}
    for status, (model, description) in sorted(success.items()):
        out[status] = {"model": model, "description": description}
    by_status: dict[int, list[ErrorCode]] = {}
    for code in codes:
        by_status.setdefault(status_for(code), []).append(code)
    for code in query_codes:
        by_status.setdefault(400, []).append(code)
    for status, group in sorted(by_status.items()):
        examples: dict[str, Any] = {}
        for c in group:
            doc = problem_document(c, TITLES[c].lower(), instance="/v1/...")
            doc["status"] = status
            examples[c.value] = {"summary": TITLES[c], "value": doc}
        out[status] = {
            "model": Problem,
            "description": ", ".join(c.value for c in group),
            "content": {PROBLEM_JSON: {"examples": examples}},
        }
    located = set(location)
    for key, entry in out.items():
        status = int(key)
        headers: dict[str, Any] = {}
        if status in (429, 503):
            headers["Retry-After"] = {**_RETRY_AFTER, "required": True}
        elif status == 409 and ErrorCode.IDEMPOTENCY_KEY_IN_USE in by_status.get(409, []):
            headers["Retry-After"] = {
                **_RETRY_AFTER,
                "description": "on idempotency_key_in_use: " + _RETRY_AFTER_DOC,
            }
        if status == 401:
            headers["WWW-Authenticate"] = _WWW_AUTHENTICATE
        if status in located:
            headers["Location"] = _LOCATION
        if keyed and status in _ANSWER_STATUSES:
            headers["Idempotent-Replayed"] = _REPLAYED
            headers["Payments-Warning"] = _PAYMENTS_WARNING
        if prefer and status in _ANSWER_STATUSES:
            headers["Preference-Applied"] = _PREFERENCE_APPLIED
        if headers:
            entry["headers"] = headers
    return out


def _card_number_example() -> dict[str, Any]:
    code = ErrorCode.CARD_NUMBER_NOT_ALLOWED
    doc = problem_document(code, TITLES[code].lower(), instance=None)
    return {"summary": TITLES[code], "value": doc}


def _document_url_guard(op: dict[str, Any]) -> None:
    """``pan_guard`` answers 422 ``card_number_not_allowed`` for a card number anywhere in the URL, before
    routing: every operation with path or query parameters can get it."""
    if not any(p["in"] in ("path", "query") for p in op.get("parameters", [])):
        return
    response = op["responses"].setdefault("422", {"description": ""})
    codes = [c for c in response["description"].split(", ") if c]
    response["description"] = ", ".join(dict.fromkeys([*codes, ErrorCode.CARD_NUMBER_NOT_ALLOWED.value]))
    media = response.setdefault("content", {}).setdefault(PROBLEM_JSON, {})
    media["schema"] = {"$ref": "#/components/schemas/Problem"}
    media.setdefault("examples", {})[ErrorCode.CARD_NUMBER_NOT_ALLOWED.value] = _card_number_example()


def _finish_operation(op: dict[str, Any]) -> None:
    for param in op.get("parameters", []):
        if param["in"] != "header":
            continue
        name = param["name"].lower()
        if name == "idempotency-key":
            # ``deps.get_idempotency_key`` marks the key required; the optional variant has no mark.
            param["required"] = bool(param.get("schema", {}).get("x-required"))
            param["schema"] = dict(_KEY_SCHEMA)
        elif name == "prefer":
            param["name"] = "Prefer"
            param["schema"] = {"type": "string", "examples": ["wait=10"]}
    answers = op.get("responses", {})
    for status, response in list(answers.items()):
        if not status.isdigit() or int(status) < 400:
            continue
        content = response.get("content", {})
        schema = str(content.get("application/json", {}).get("schema"))
        if "HTTPValidationError" in schema:
            # FastAPI's own 422 for a route with parameters: ``responses()`` declares the real ones.
            del answers[status]
        elif "#/components/schemas/Problem" in schema:
            problem = content.pop("application/json")
            content.setdefault(PROBLEM_JSON, {})["schema"] = problem["schema"]


def build_openapi(app: FastAPI) -> dict[str, Any]:
    spec = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        servers=app.servers,
        tags=app.openapi_tags,
    )
    for operations in spec.get("paths", {}).values():
        for op in operations.values():
            _finish_operation(op)
            _document_url_guard(op)
    schemas = spec.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def install_openapi(app: FastAPI) -> None:
    """``app.openapi()`` returns the finished document (built once, then cached like FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# Code groups most routes share.
AUTH: tuple[ErrorCode, ...] = (ErrorCode.UNAUTHENTICATED, ErrorCode.DEPENDENCY_UNAVAILABLE)
# What any POST that publishes a command can answer besides its own codes.
INTAKE: tuple[ErrorCode, ...] = (
    ErrorCode.MALFORMED_JSON,
    ErrorCode.VALIDATION_ERROR,
    ErrorCode.CARD_NUMBER_NOT_ALLOWED,
    ErrorCode.IDEMPOTENCY_KEY_INVALID,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE,
    ErrorCode.IDEMPOTENCY_KEY_REUSED,
    ErrorCode.RATE_LIMITED,
    ErrorCode.INTAKE_UNAVAILABLE,
)
# What a read of the read model can answer besides its own codes.
READ: tuple[ErrorCode, ...] = (*AUTH, ErrorCode.NOT_A_MEMBER, ErrorCode.READ_MODEL_REBUILDING)
