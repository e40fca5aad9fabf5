"""Opaque page cursors of the listing routes. Pure.

A cursor names the last entry of the previous page: its sort score (the account ``seq``) and its member in
the Redis sorted set (an operation or ledger transaction id). It is URL-safe base64 of ``v1:<seq>:<member>``
so clients treat it as opaque and we can change the format behind a new version prefix.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from payments.gateway.errors import InvalidQuery

_VERSION = "v1"
_MAX_MEMBER_CHARS = 256
_MAX_CURSOR_CHARS = 400


@dataclass(frozen=True)
class Cursor:
    seq: int
    member: str


def encode_cursor(cursor: Cursor) -> str:
    raw = f"{_VERSION}:{cursor.seq}:{cursor.member}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor named by ``text``; ``InvalidQuery`` (400 ``validation_error``) for anything we did not
    issue."""
    bad = InvalidQuery("the cursor is invalid; pass the next_cursor of a previous page unchanged")
    if not text or len(text) > _MAX_CURSOR_CHARS:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, ValueError) as exc:
        raise bad from exc
    version, _, rest = raw.partition(":")
    seq_text, _, member = rest.partition(":")
    if (
        version != _VERSION
        or not (seq_text.isascii() and seq_text.isdigit())
        or not 0 < len(member) <= _MAX_MEMBER_CHARS
    ):
        raise bad
    return Cursor(int(seq_text), member)
