"""The simulator's view of Standard Webhooks signing: the shared ``payments.standard_webhooks`` module with
its configuration errors turned into the simulator's own ``InvalidSecret`` (a ``PspSimError``, mapped to a
4xx by the simulator's HTTP edge).

The signing itself lives in ``payments.standard_webhooks`` so that the sender (this simulator) and the
receiver (the gateway's webhook ingress) share one implementation.
"""

from __future__ import annotations

from payments import standard_webhooks
from payments.psp_sim.errors import InvalidSecret
from payments.standard_webhooks import (
    DEFAULT_TOLERANCE_S,
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SECRET_PREFIX,
    SIGNATURE_VERSION,
    SignatureError,
    encode_secret,
    verify,
)

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "SECRET_PREFIX",
    "SIGNATURE_VERSION",
    "SignatureError",
    "decode_secret",
    "encode_secret",
    "sign",
    "verify",
]


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; raises the simulator's ``InvalidSecret``."""
    try:
        return standard_webhooks.decode_secret(secret)
    except standard_webhooks.InvalidSecret as exc:
        raise InvalidSecret(str(exc)) from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one secret: ``v1,<base64>``."""
    decode_secret(secret)  # a malformed secret is the simulator's InvalidSecret
    return standard_webhooks.sign(secret, msg_id, timestamp, body)
