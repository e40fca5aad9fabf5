"""``POST /v1/psp/webhooks``: PSP events into the command log. No API key: authenticated by signature.

1. Verify the Standard Webhooks signature over the raw body against every configured secret (several
   during a rotation), with the 5-minute timestamp tolerance. Any failure → 400
   ``webhook_signature_invalid`` and nothing else happens.
2. Parse the event; types we do not act on and events without our metadata → 202 ``ignored`` (counted in
   ``payments_gateway_webhooks_total`` and logged).
3. Claim the ``webhook-id`` in Redis (``webhooks.WebhookDedupe``): published before → 200 ``duplicate``;
   another delivery of it is being published right now → 409 ``idempotency_key_in_use`` with
   ``Retry-After`` (the PSP retries, then gets ``duplicate``). Redis down → carry on without a record.
4. Publish ``RecordPspOutcome`` keyed by the account and await the broker's acknowledgement; failure →
   release the claim, 503 with ``Retry-After`` so the PSP retries. Then record the ``webhook-id`` as
   published → 200 ``published``.

Without Redis a duplicate is published twice; that is harmless because the processor applies PSP outcomes
monotonically (a second identical outcome changes nothing).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from payments.gateway.deps import Services
from payments.gateway.errors import GatewayError, IntakeUnavailable
from payments.gateway.openapi import responses
from payments.gateway.render import json_answer
from payments.gateway.webhooks import Ignored, WebhookClaim, outcome_command, parse_event
from payments.schemas.api import WebhookAck
from payments.schemas.errors import ErrorCode as E
from payments.standard_webhooks import InvalidSecret, SignatureError, verify

log = logging.getLogger(__name__)

router = APIRouter(tags=["psp"])

WEBHOOKS_ROUTE = "/v1/psp/webhooks"

_EXAMPLE_EVENT = {
    "id": "evt_5f0c1e2d3a4b5c6d7e8f9a0b",
    "type": "transfer.succeeded",
    "timestamp": "2026-01-01T00:00:01.500000Z",
    "data": {
        "id": "tr_5b0c9e1d2f3a4b5c",
        "kind": "transfer",
        "status": "succeeded",
        "failure_code": None,
        "amount": 1250,
        "currency": "EUR",
        "idempotency_key": "pay_0d6f3b8a1c2e4f5a6b7c8d9e0f",
        "created_at": "2026-01-01T00:00:01.200000Z",
        "metadata": {
            "account_id": "acct_4f1c2a9e0b7d3c5a81e6f2d4b9",
            "op_id": "pay_0d6f3b8a1c2e4f5a6b7c8d9e0f",
        },
        "payee": "acme_books",
    },
}
_SIGNATURE_HEADERS = [
    {"name": "webhook-id", "in": "header", "required": True, "schema": {"type": "string"}},
    {"name": "webhook-timestamp", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "unix seconds; at most 5 minutes from our clock either way"},
    {"name": "webhook-signature", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>` entries"},
]  # fmt: skip


def _invalid(services: Services, reason: str, detail: str) -> GatewayError:
    services.metrics.webhooks.labels("invalid_signature").inc()
    log.warning("webhook rejected: %s (%s)", reason, detail)
    return GatewayError(f"{reason}: {detail}", code=E.WEBHOOK_SIGNATURE_INVALID)


@router.post(
    WEBHOOKS_ROUTE,
    response_model=WebhookAck,
    operation_id="receive_psp_webhook",
    summary="PSP webhook (Standard Webhooks signature, no API key)",
    openapi_extra={
        "parameters": _SIGNATURE_HEADERS,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}, "example": _EXAMPLE_EVENT}},
        },
    },
    responses=responses(
        {
            200: (WebhookAck, "`published` into the command log, or a `duplicate` of one that was"),
            202: (WebhookAck, "authentic but not about one of our operations"),
        },
        E.WEBHOOK_SIGNATURE_INVALID,
        E.MALFORMED_JSON,
        E.IDEMPOTENCY_KEY_IN_USE,
        E.VALIDATION_ERROR,
        E.INTAKE_UNAVAILABLE,
    ),
)
async def psp_webhook(request: Request, services: Services) -> Response:
    """Verifies ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (HMAC-SHA256 over
    ``id.timestamp.body``, ``v1,<base64>`` entries), then publishes the transfer or charge outcome to the
    account's command log. 200 ``published`` or ``duplicate``; 202 ``ignored``; 400 bad signature; 409
    while another delivery of the same webhook-id is being published; 503 with ``Retry-After`` if the
    outcome could not be made durable (the PSP retries)."""
    settings = services.settings
    body = await request.body()
    secrets = [s.get_secret_value() for s in settings.webhook_secrets]
    try:
        webhook_id = verify(
            secrets, request.headers, body, services.clock_ms() // 1000, settings.webhook_tolerance_s
        )
    except SignatureError as exc:
        raise _invalid(services, exc.code, exc.message) from exc
    except InvalidSecret as exc:  # settings validate secrets, so only a misconfiguration gets here
        raise _invalid(services, "signature_invalid", "the gateway's webhook secrets are invalid") from exc

    try:
        event = parse_event(body)
        decision = outcome_command(event, webhook_id, services.clock_ms())
    except ValidationError as exc:
        services.metrics.webhooks.labels("malformed").inc()
        log.error("webhook %s is authentic but malformed: %d error(s)", webhook_id, exc.error_count())
        code = E.MALFORMED_JSON if any(e["type"] == "json_invalid" for e in exc.errors()) else None
        raise GatewayError(
            "the webhook body is not a PSP event we can read", code=code or E.VALIDATION_ERROR
        ) from exc
    if isinstance(decision, Ignored):
        services.metrics.webhooks.labels(f"ignored_{decision.reason}").inc()
        log.info("webhook %s (%s) ignored: %s", webhook_id, event.type, decision.detail)
        return json_answer(202, WebhookAck(webhook_id=webhook_id, status="ignored")).response()

    claim, token = await services.webhook_dedupe.claim(webhook_id)
    if claim is WebhookClaim.DONE:
        services.metrics.webhooks.labels("duplicate").inc()
        return json_answer(200, WebhookAck(webhook_id=webhook_id, status="duplicate")).response()
    if claim is WebhookClaim.IN_FLIGHT:
        services.metrics.webhooks.labels("in_flight").inc()
        raise GatewayError(
            "another delivery of this webhook-id is being published; retry",
            code=E.IDEMPOTENCY_KEY_IN_USE,
            retry_after_s=settings.retry_after_s,
        )
    try:
        await services.publisher.publish(decision)
    except IntakeUnavailable as exc:
        if claim is WebhookClaim.NEW:
            await services.webhook_dedupe.release(webhook_id, token)
        services.metrics.webhooks.labels("publish_failed").inc()
        services.metrics.publish_failures.labels(exc.reason).inc()
        log.warning("webhook %s not published (%s): %s", webhook_id, exc.reason, exc.detail)
        exc.retry_after_s = settings.retry_after_s
        raise
    await services.webhook_dedupe.published(webhook_id)
    services.metrics.webhooks.labels("published").inc()
    ack = WebhookAck(webhook_id=webhook_id, status="published", command_id=decision.command_id)
    return json_answer(200, ack).response()
