"""Pure helpers of the idempotency scheme: header parsing, request fingerprints, deterministic ids.

No I/O here, so all of it is unit- and property-tested directly.

* ``Idempotency-Key`` follows the IETF httpapi draft: an RFC 8941 sf-string (``"abc"``), though the bare
  form (``abc``) is accepted as well because many clients send it. Both forms name the same key. At most
  255 characters of printable ASCII.
* The fingerprint binds a key to the *validated* request: sha256 over canonical JSON (sorted keys, no
  whitespace) of method, route template, account id and the validated body (defaults filled in), so key
  order, whitespace or an omitted default do not change it, and any changed field does.
* Operation ids (payments, top-ups, adjustments) are derived from (principal, account id, key), so a retry
  after Redis lost the key still produces the same id and the processor dedupes it: ``payments.schemas.ids``
  (re-exported here), which says why the account is part of it.
"""

from __future__ import annotations

import hashlib

import orjson
from pydantic import BaseModel

from payments.gateway.errors import GatewayError
from payments.schemas.errors import ErrorCode

# The derivation is shared vocabulary (the bench baseline and the chaos judge use it too): payments/schemas.
from payments.schemas.ids import derive_account_id as derive_account_id
from payments.schemas.ids import derive_adjustment_id as derive_adjustment_id
from payments.schemas.ids import derive_member_command_id as derive_member_command_id
from payments.schemas.ids import derive_payment_id as derive_payment_id
from payments.schemas.ids import derive_top_up_id as derive_top_up_id

MAX_KEY_LENGTH = 255


def _printable(text: str) -> bool:
    return all(0x20 <= ord(ch) <= 0x7E for ch in text)


def _invalid(detail: str) -> GatewayError:
    return GatewayError(detail, code=ErrorCode.IDEMPOTENCY_KEY_INVALID)


def parse_idempotency_key(raw: str | None) -> str:
    """The key named by an ``Idempotency-Key`` header value, or a ``GatewayError`` (missing / invalid)."""
    if raw is None:
        raise GatewayError(
            "this request moves money and needs an Idempotency-Key header",
            code=ErrorCode.IDEMPOTENCY_KEY_MISSING,
        )
    value = raw.strip(" \t")
    if value.startswith('"'):
        key = _unquote_sf_string(value)
    else:
        if '"' in value or "\\" in value or " " in value:
            raise _invalid("an unquoted Idempotency-Key must not contain spaces, quotes or backslashes")
        key = value
    if not key:
        raise _invalid("the Idempotency-Key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise _invalid(f"the Idempotency-Key is longer than {MAX_KEY_LENGTH} characters")
    if not _printable(key):
        raise _invalid("the Idempotency-Key must be printable ASCII")
    return key


def _unquote_sf_string(value: str) -> str:
    """RFC 8941 §4.2.5: ``"`` ... ``"`` with ``\\"`` and ``\\\\`` as the only escapes."""
    out: list[str] = []
    i = 1
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in '"\\':
                raise _invalid("invalid escape in the quoted Idempotency-Key")
            out.append(value[i + 1])
            i += 2
            continue
        if ch == '"':
            if i != len(value) - 1:
                raise _invalid("unexpected characters after the quoted Idempotency-Key")
            return "".join(out)
        out.append(ch)
        i += 1
    raise _invalid("unterminated quoted Idempotency-Key")


def key_digest(key: str) -> str:
    """sha256 of the key: what Redis stores and what logs show (truncated), never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


def redis_key(principal: str, key: str) -> str:
    """``idem:<principal>:<sha256(key)>`` — keys are scoped to the principal that sent them."""
    return record_key(principal, key_digest(key))


def record_key(principal: str, digest: str) -> str:
    """``redis_key`` from the key's digest (``key_digest``)."""
    return f"idem:{principal}:{digest}"


def fresh_key_slot(principal: str, account_id: str, amount: int, currency: str, counterparty: str) -> str:
    """``fk:<principal>:<hash>``: the slot of one logical payment's signature (principal, account, amount,
    currency, payee or card token), where the fresh-key detection remembers which key last used it. Hashed:
    the payee stays out of Redis key names; 128 bits keep distinct signatures apart."""
    digest = hashlib.sha256(
        "\0".join((principal, account_id, str(amount), currency, counterparty)).encode()
    ).hexdigest()
    return f"fk:{principal}:{digest[:32]}"


def canonical_json(doc: object) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def request_fingerprint(method: str, route: str, account_id: str | None, body: BaseModel) -> str:
    """sha256 hex of the canonical validated request (see the module docstring)."""
    doc = {
        "method": method.upper(),
        "route": route,
        "account_id": account_id,
        "body": body.model_dump(mode="json"),
    }
    return hashlib.sha256(canonical_json(doc)).hexdigest()
