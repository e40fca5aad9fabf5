"""Idempotency-Key parsing and request fingerprints, pure."""

from __future__ import annotations

import hashlib

import orjson
from pydantic import BaseModel

from payments.psp_sim.errors import IdempotencyKeyInvalid, IdempotencyKeyMissing

MAX_KEY_LENGTH = 255  # as in the IETF httpapi idempotency-key draft and our gateway


def parse_idempotency_key(raw: str | None) -> str:
    """The key of an ``Idempotency-Key`` header; the draft makes it a quoted string, bare tokens are accepted."""
    if raw is None:
        raise IdempotencyKeyMissing("the Idempotency-Key header is required on requests that move money")
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key:
        raise IdempotencyKeyInvalid("the Idempotency-Key header is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise IdempotencyKeyInvalid(f"the Idempotency-Key header is longer than {MAX_KEY_LENGTH} characters")
    if not key.isprintable() or not key.isascii():
        raise IdempotencyKeyInvalid("the Idempotency-Key header must be printable ASCII")
    return key


def fingerprint(kind: str, request: BaseModel) -> str:
    """Digest of what a request asks for; the same key with another fingerprint is a 422.

    Canonical JSON with sorted keys, over the validated model (defaults filled in), so that field order and
    omitted optional fields do not make two equal requests differ.
    """
    canonical = orjson.dumps(
        {"kind": kind, "request": request.model_dump(mode="json")}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(canonical).hexdigest()
