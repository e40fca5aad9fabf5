"""Standard Webhooks signing (``payments.standard_webhooks``, shared by the PSP simulator and the gateway):
pure unit and property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.standard_webhooks import (
    InvalidSecret,
    SignatureError,
    decode_secret,
    encode_secret,
    sign,
    sign_all,
    signed_headers,
    verify,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = encode_secret(b"another secret of 24 byte")
NOW = 1_700_000_000


def headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_matches_the_reference_vector() -> None:
    # The example from the Standard Webhooks reference libraries' test suites.
    body = b'{"test": 2432232314}'
    signature = sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_round_trip_returns_the_message_id() -> None:
    body = b'{"type":"charge.succeeded"}'
    assert verify([SECRET], headers("evt_1", NOW, sign(SECRET, "evt_1", NOW, body)), body, now=NOW) == "evt_1"


def test_headers_are_case_insensitive() -> None:
    body = b"{}"
    signed = headers("evt_1", NOW, sign(SECRET, "evt_1", NOW, body))
    verify([SECRET], {name.upper(): value for name, value in signed.items()}, body, now=NOW)


def test_wrong_secret_is_rejected() -> None:
    body = b"{}"
    with pytest.raises(SignatureError) as info:
        verify([OTHER_SECRET], headers("evt_1", NOW, sign(SECRET, "evt_1", NOW, body)), body, now=NOW)
    assert info.value.code == "signature_invalid"


@pytest.mark.parametrize("skew", [-301, 301, 86_400])
def test_timestamp_outside_tolerance_is_rejected(skew: int) -> None:
    body = b"{}"
    signed = headers("evt_1", NOW, sign(SECRET, "evt_1", NOW, body))
    with pytest.raises(SignatureError) as info:
        verify([SECRET], signed, body, now=NOW + skew)
    assert info.value.code == "timestamp_out_of_tolerance"


def test_timestamp_at_the_tolerance_edge_is_accepted() -> None:
    body = b"{}"
    verify([SECRET], headers("evt_1", NOW, sign(SECRET, "evt_1", NOW, body)), body, now=NOW + 300)


def test_tampered_body_id_or_timestamp_is_rejected() -> None:
    body = b'{"amount":100}'
    signature = sign(SECRET, "evt_1", NOW, body)
    for tampered_headers, tampered_body in [
        (headers("evt_1", NOW, signature), b'{"amount":900}'),
        (headers("evt_2", NOW, signature), body),
        (headers("evt_1", NOW + 1, signature), body),
    ]:
        with pytest.raises(SignatureError):
            verify([SECRET], tampered_headers, tampered_body, now=NOW)


def test_any_of_several_secrets_is_accepted_during_rotation() -> None:
    body = b"{}"
    verify([OTHER_SECRET, SECRET], headers("evt_1", NOW, sign(SECRET, "evt_1", NOW, body)), body, now=NOW)


def test_any_of_several_signatures_is_accepted() -> None:
    body = b"{}"
    signature = " ".join(
        [
            "v1a,c29tZXRoaW5nIGVsc2U=",  # another scheme: ignored
            sign(OTHER_SECRET, "evt_1", NOW, body),  # signed with a secret the receiver does not have
            "v1,not-base64!",
            sign(SECRET, "evt_1", NOW, body),
        ]
    )
    verify([SECRET], headers("evt_1", NOW, signature), body, now=NOW)


@pytest.mark.parametrize(
    "bad_headers",
    [
        {},
        {"webhook-id": "evt_1", "webhook-timestamp": str(NOW)},
        {"webhook-id": "evt_1", "webhook-timestamp": "yesterday", "webhook-signature": "v1,AAAA"},
    ],
)
def test_missing_or_malformed_headers_are_rejected(bad_headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        verify([SECRET], bad_headers, b"{}", now=NOW)


def test_no_secrets_rejects_everything() -> None:
    body = b"{}"
    with pytest.raises(SignatureError):
        verify([], headers("evt_1", NOW, sign(SECRET, "evt_1", NOW, body)), body, now=NOW)


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not base64!", ""])
def test_malformed_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        decode_secret(secret)


def test_secret_prefix_is_optional() -> None:
    assert decode_secret(SECRET) == decode_secret(SECRET.removeprefix("whsec_"))


@given(
    msg_id=st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s.isprintable()),
    timestamp=st.integers(min_value=0, max_value=2**40),
    body=st.binary(max_size=512),
    flip=st.integers(min_value=0),
)
def test_round_trip_and_any_bit_flip_fails(msg_id: str, timestamp: int, body: bytes, flip: int) -> None:
    signed = headers(msg_id, timestamp, sign(SECRET, msg_id, timestamp, body))
    verify([SECRET], signed, body, now=timestamp)
    if body:
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        with pytest.raises(SignatureError):
            verify([SECRET], signed, tampered, now=timestamp)


def test_second_of_two_secrets_is_accepted_in_either_order() -> None:
    body = b"{}"
    signed = headers("evt_1", NOW, sign(OTHER_SECRET, "evt_1", NOW, body))
    verify([SECRET, OTHER_SECRET], signed, body, now=NOW)
    verify([OTHER_SECRET, SECRET], signed, body, now=NOW)
    with pytest.raises(SignatureError):
        verify([SECRET], signed, body, now=NOW)


def test_sender_signing_with_both_secrets_during_rotation() -> None:
    body = b'{"a":1}'
    both = signed_headers([SECRET, OTHER_SECRET], "evt_9", NOW, body)
    assert both["webhook-signature"] == sign_all([SECRET, OTHER_SECRET], "evt_9", NOW, body)
    assert len(both["webhook-signature"].split()) == 2
    # a receiver that knows either secret alone accepts it
    assert verify([SECRET], both, body, now=NOW) == "evt_9"
    assert verify([OTHER_SECRET], both, body, now=NOW) == "evt_9"


def test_a_malformed_configured_secret_is_a_configuration_error() -> None:
    body = b"{}"
    with pytest.raises(InvalidSecret):
        verify(["whsec_not base64!", SECRET], headers("e", NOW, sign(SECRET, "e", NOW, body)), body, now=NOW)


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_future_and_past_within_tolerance_are_accepted(skew: int) -> None:
    body = b"{}"
    verify([SECRET], headers("evt_1", NOW + skew, sign(SECRET, "evt_1", NOW + skew, body)), body, now=NOW)


def test_tolerance_is_configurable() -> None:
    body = b"{}"
    signed = headers("evt_1", NOW, sign(SECRET, "evt_1", NOW, body))
    with pytest.raises(SignatureError) as info:
        verify([SECRET], signed, body, now=NOW + 61, tolerance_s=60)
    assert info.value.code == "timestamp_out_of_tolerance"
