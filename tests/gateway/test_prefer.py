"""``Prefer: wait=N`` parsing (RFC 7240). Pure."""

from __future__ import annotations

import pytest

from payments.gateway.prefer import parse_prefer_wait, preference_applied


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        (["wait=5"], 5),
        (["WAIT = 3"], 3),
        (['wait="7"'], 7),
        (["respond-async, wait=2"], 2),
        (["respond-async", "wait=4"], 4),
        (["wait=0"], 0),
        (["wait=60"], 10),  # clamped to the maximum
        (["wait=5, wait=1"], 5),  # the first occurrence wins
        (["wait=5;foo=bar"], 5),
        (["wait=-1"], None),
        (["wait=1.5"], None),
        (["wait=abc"], None),
        (["wait"], None),
        (['handling=lenient, return="a,b", wait=3'], 3),
        (["\u0663"], None),
        (["wait=\u0663"], None),  # a non-ASCII digit is not a delta-seconds
    ],
)
def test_parse_prefer_wait(headers: list[str], expected: int | None) -> None:
    assert parse_prefer_wait(headers, 10) == expected


def test_preference_applied() -> None:
    assert preference_applied(3) == "wait=3"
