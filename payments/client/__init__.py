"""A typed Python client of the payments HTTP API, blocking (``Client``) and asyncio (``AsyncClient``).

Both share one pure core (``calls`` builds requests from the ``payments.schemas.api`` models, ``core``
runs a call's attempts and parses answers, ``retry`` decides what to retry), so they behave alike: one
Idempotency-Key per logical call, retries only of what is safe to repeat with that key, problems raised as
typed exceptions (``errors``). See docs/client.md.
"""

from payments.client.aio import AsyncClient
from payments.client.calls import new_idempotency_key
from payments.client.core import Call, Reply
from payments.client.errors import (
    AccountExists,
    AccountNotFound,
    CardNumberNotAllowed,
    CurrencyMismatch,
    DependencyUnavailable,
    Forbidden,
    IdempotencyError,
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    InsufficientFunds,
    IntakeUnavailable,
    InternalError,
    MalformedJson,
    MethodNotAllowed,
    NotAMember,
    NotFound,
    OperationExpired,
    OperationFailed,
    PaymentNotFound,
    PaymentsClientError,
    PspDeclined,
    PspDiscrepancy,
    RateLimited,
    ReadModelRebuilding,
    ServiceUnavailable,
    TransportFailed,
    Unauthenticated,
    UnexpectedResponse,
    UnknownProblem,
    ValidationFailed,
    WebhookSignatureInvalid,
)
from payments.client.settings import ClientSettings
from payments.client.sync import Client

__all__ = [
    "AccountExists",
    "AccountNotFound",
    "AsyncClient",
    "Call",
    "CardNumberNotAllowed",
    "Client",
    "ClientSettings",
    "CurrencyMismatch",
    "DependencyUnavailable",
    "Forbidden",
    "IdempotencyError",
    "IdempotencyKeyInUse",
    "IdempotencyKeyInvalid",
    "IdempotencyKeyMissing",
    "IdempotencyKeyReused",
    "InsufficientFunds",
    "IntakeUnavailable",
    "InternalError",
    "MalformedJson",
    "MethodNotAllowed",
    "NotAMember",
    "NotFound",
    "OperationExpired",
    "OperationFailed",
    "PaymentNotFound",
    "PaymentsClientError",
    "PspDeclined",
    "PspDiscrepancy",
    "RateLimited",
    "ReadModelRebuilding",
    "Reply",
    "ServiceUnavailable",
    "TransportFailed",
    "Unauthenticated",
    "UnexpectedResponse",
    "UnknownProblem",
    "ValidationFailed",
    "WebhookSignatureInvalid",
    "new_idempotency_key",
]
