"""Standard Webhooks signatures (https://www.standardwebhooks.com), pure: no clock, no I/O, stdlib only.

A message is signed as ``v1,<base64(HMAC-SHA256(key, f"{msg_id}.{timestamp}.".encode() + body))>`` where
``key`` is the base64-decoded part of a ``whsec_<base64>`` secret. The ``webhook-signature`` header may hold
several space-separated signatures (one per active secret while a secret is rotated); a message is
authentic if any of them matches any of the receiver's secrets.

Shared by the sender (the PSP simulator) and the receiver (the gateway's webhook ingress), so both sides
agree byte for byte. It depends on nothing else in the project: the simulator must know nothing of our
internals, so each side translates these exceptions into its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix of a secret, not a secret
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300  # the spec's 5 minutes: bounds how long a captured message can be replayed

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


class InvalidSecret(ValueError):
    """A secret is not in the ``whsec_<base64>`` form: a configuration error, not a bad message."""


class SignatureError(ValueError):
    """The message must be rejected. ``code`` tells why; none of these is fixed by retrying unchanged.

    Codes: ``signature_missing`` (a header is absent), ``timestamp_invalid``, ``timestamp_out_of_tolerance``
    (stale or from the future), ``signature_invalid`` (no signature matches, or no secret configured).
    """

    def __init__(self, message: str, code: str = "signature_invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional, as in the reference libraries)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret("webhook secret is not whsec_<base64>") from exc
    if not key:
        raise InvalidSecret("webhook secret is empty")
    return key


def encode_secret(key: bytes) -> str:
    """The ``whsec_<base64>`` form of raw key bytes (24-64 random bytes is the usual size)."""
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one secret: ``v1,<base64>``."""
    digest = _digest(decode_secret(secret), msg_id, timestamp, body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def sign_all(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value while rotating: one ``v1,`` entry per secret, space separated."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def signed_headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """All three Standard Webhooks headers of a message signed with every one of ``secrets``."""
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign_all(secrets, msg_id, timestamp, body),
    }


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> str:
    """Return the ``webhook-id`` if ``body`` was signed by one of ``secrets``; raise ``SignatureError``
    otherwise (``InvalidSecret`` if a configured secret is malformed).

    ``headers`` is matched case-insensitively. ``now`` is unix seconds; the timestamp must lie within
    ``tolerance_s`` of it in either direction (a sender's clock may be ahead of ours).
    """
    if not secrets:
        raise SignatureError("no webhook secret configured", code="signature_invalid")
    keys = [decode_secret(secret) for secret in secrets]  # a bad secret is a config error, raised first
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get(HEADER_ID)
    raw_timestamp = lowered.get(HEADER_TIMESTAMP)
    raw_signatures = lowered.get(HEADER_SIGNATURE)
    if not msg_id or not raw_timestamp or not raw_signatures:
        raise SignatureError(
            "missing webhook-id, webhook-timestamp or webhook-signature", "signature_missing"
        )
    try:
        timestamp = int(raw_timestamp)
    except ValueError as exc:
        raise SignatureError("webhook-timestamp is not an integer", "timestamp_invalid") from exc
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError("webhook-timestamp outside the tolerance", "timestamp_out_of_tolerance")

    provided: list[bytes] = []
    for item in raw_signatures.split():
        version, _, encoded = item.partition(",")
        if version != SIGNATURE_VERSION or not encoded:
            continue  # other schemes (e.g. v1a, asymmetric) may sit alongside; they are not ours to check
        try:
            provided.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    # Every pair is compared (no early exit on the secret loop) so timing does not reveal which secret matched.
    matched = False
    for key in keys:
        expected = _digest(key, msg_id, timestamp, body)
        for candidate in provided:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no signature matches", "signature_invalid")
    return msg_id
