"""A payment-service-provider simulator over HTTP (docs/design.md §6), for the dev stack, tests and
benchmarks.

Run it with ``payments psp-sim --port 8090 [--seed 7] [--webhook-url URL --webhook-secret whsec_...]``.

PSP API (``Idempotency-Key`` required on POSTs; 201 succeeded / 402 failed, body = the movement):
  POST /v1/charges            {amount, currency, payment_method: tok_ok|tok_declined|tok_insufficient_funds|
                               tok_expired_card, reference?, metadata?}
  POST /v1/transfers          {amount, currency, payee, reference?, metadata?}   (every payee succeeds)
  POST /v1/refunds            {charge_id, amount, reference?, metadata?}
  GET  /v1/movements/by-key/{key}   the movement under a key, or 404 (never moves money)
  GET  /v1/settlement-report?since=&until=
Test controls (never faulted): GET|POST|DELETE /_sim/faults, GET /_sim/audit, POST /_sim/inject,
POST /_sim/reset, GET|PUT /_sim/webhooks. Ops: /healthz, /metrics, /docs.

Modules: pure logic in ``faults``, ``latency``, ``signing``, ``idempotency``, ``outcomes``, ``orphans``;
behaviour in ``engine``; state in ``store``; I/O in ``webhooks``, ``*_routes``, ``app``, ``main``.
"""
