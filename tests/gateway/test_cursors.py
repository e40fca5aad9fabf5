"""Opaque page cursors: round trip, and anything we did not issue is a 400 validation_error. Pure."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.gateway.cursors import Cursor, decode_cursor, encode_cursor
from payments.gateway.errors import InvalidQuery
from payments.schemas.errors import ErrorCode


@given(
    seq=st.integers(min_value=0, max_value=2**63),
    member=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=256),
)
def test_round_trip(seq: int, member: str) -> None:
    text = encode_cursor(Cursor(seq, member))
    assert text.isascii()
    assert "=" not in text
    assert "/" not in text
    assert "+" not in text
    assert decode_cursor(text) == Cursor(seq, member)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a cursor",
        "!!!!",
        _b64(b"v2:3:pay_1"),
        _b64(b"v1:x:pay_1"),
        _b64(b"v1:-3:pay_1"),
        _b64(b"v1:3:"),
        _b64(b"v1:3"),
        _b64(b"\xff\xfe"),
        "A" * 1000,
    ],
)
def test_foreign_cursors_are_rejected(text: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        decode_cursor(text)
    assert info.value.code is ErrorCode.VALIDATION_ERROR
