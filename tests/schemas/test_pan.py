"""The card-number detector: Luhn-valid 13-19 digit runs, contiguous or grouped, and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.schemas.pan import contains_card_number, find_card_number, luhn_valid

DIGITS = "0123456789"


def with_check_digit(body: str) -> str:
    """``body`` plus the digit that makes it Luhn-valid."""
    for d in DIGITS:
        if luhn_valid(body + d):
            return body + d
    raise AssertionError("unreachable: one of ten digits always fits")


def break_check_digit(pan: str) -> str:
    return pan[:-1] + str((int(pan[-1]) + 1) % 10)


pans = st.integers(min_value=13, max_value=19).flatmap(
    lambda n: st.text(DIGITS, min_size=n - 1, max_size=n - 1).map(with_check_digit)
)


def grouped(pan: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        if i >= len(pan):
            break
        out.append(pan[i : i + size])
        i += size
    if i < len(pan):
        out.append(pan[i:])
    return sep.join(out)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",  # Visa test card
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "378282246310005",  # Amex, 15 digits
        "3782 822463 10005",
        "5555555555554444",
        "6011111111111117",
        "4222222222222",  # 13 digits
        "my card is 4111 1111 1111 1111, thanks",
        "card_4111111111111111",
        "pay:4111111111111111.",
    ],
)
def test_card_numbers_are_found(text: str) -> None:
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tok_ok",
        "tok_insufficient_funds",
        "4111111111111112",  # Luhn-invalid
        "411111111111",  # 12 digits
        "41111111111111111111",  # 20 digits: not a card number, whichever 16 of them pass Luhn
        "order 20241204 amount 100000 EUR",
        "x4111111111111111",  # touches a letter
        "4111111111111111y",
        "acct_4111111111111111abc",
        "4111  1111  1111  1111",  # double spaces: four separate short numbers
        "1234567890123456",  # Luhn-invalid
    ],
)
def test_other_text_is_not(text: str) -> None:
    assert not contains_card_number(text)


@given(pans)
def test_every_luhn_valid_run_is_found(pan: str) -> None:
    assert contains_card_number(pan)
    assert contains_card_number(f"note: {pan} end")


@given(pans)
def test_a_wrong_check_digit_is_not(pan: str) -> None:
    assert not contains_card_number(break_check_digit(pan))


@given(pans, st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=8), st.sampled_from(" -"))
def test_groups_separated_by_spaces_or_dashes_are_found(pan: str, sizes: list[int], sep: str) -> None:
    assert contains_card_number(grouped(pan, sizes, sep))


@given(pans, st.text(DIGITS, min_size=1, max_size=10), st.text(DIGITS, min_size=1, max_size=10))
def test_a_run_inside_a_longer_digit_run_is_not(pan: str, before: str, after: str) -> None:
    run = before + pan + after
    if len(run) > 19:
        assert not contains_card_number(f"ref {run}")


@given(st.binary(min_size=13, max_size=13))
def test_hex_ids_are_never_card_numbers(raw: bytes) -> None:
    # Our derived ids: a prefix and 26 hex characters. A decimal run inside them touches a letter or is
    # the whole 26 characters, so it is never judged a card number.
    for prefix in ("acct_", "pay_", "top_", "adj_"):
        assert not contains_card_number(prefix + raw.hex())


@given(st.text(alphabet=st.characters(exclude_characters=DIGITS), max_size=200))
def test_text_without_digits_is_never_a_card_number(text: str) -> None:
    assert not contains_card_number(text)


def test_find_card_number_reports_where_not_what() -> None:
    body = {"amount": 5, "payee": "shop", "members": ["alice", "4111 1111 1111 1111"]}
    assert find_card_number(body) == ("members", 1)
    assert find_card_number({"description": {"nested": "4111111111111111"}}) == ("description", "nested")
    assert find_card_number({"4111111111111111": "x"}) == ()  # a key: located at its parent, never echoed
    assert find_card_number({"amount": 4111111111111111}) is None  # numbers are the money types' business
    assert find_card_number({"payment_method": "tok_ok", "currency": "EUR"}) is None
    assert find_card_number("4111111111111111") == ()
