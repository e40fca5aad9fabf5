"""Detecting card numbers (PANs) in free text, so that they never enter the system.

A *card-number-looking* value is a run of 13 to 19 digits that passes the Luhn check, written either
contiguously (``4111111111111111``) or in groups separated by single spaces or dashes
(``4111 1111 1111 1111``, ``3782-822463-10005``). Pure and I/O-free; callers decide what to do.

What is deliberately NOT a card number, to keep false positives away from ordinary identifiers:
- a run touching a letter (``acct_4f1c...``, ``x4111111111111111``): our derived ids are hex, and a hex
  id holds a 13-digit decimal run often enough (about 1 in 70) that flagging those would break reads;
- a run of more than 19 digits, grouped or not (an order number, a long numeric reference): the whole
  run is judged, not every 16-digit window inside it;
- a Luhn-invalid run (``1234567890123456``).

Cost: one precompiled regular expression scan per string (C speed), plus Python work only for the rare
runs of 13 or more characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MIN_DIGITS = 13
MAX_DIGITS = 19

# Maximal runs of digit groups joined by single spaces or dashes. Greedy with nothing after it, so each
# match is the whole run; the neighbours are checked in code (a lookbehind cannot see "a letter before").
_RUN = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
# Cheap pre-filter: without 13 digit-or-separator characters in a row there is nothing to look at.
_CANDIDATE = re.compile(r"[0-9][0-9 -]{11,}[0-9]")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of ASCII digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _runs(text: str) -> Iterator[str]:
    for m in _RUN.finditer(text):
        start, end = m.span()
        if end - start < MIN_DIGITS:
            continue
        if (start > 0 and text[start - 1].isalnum()) or (end < len(text) and text[end].isalnum()):
            continue
        yield m.group().replace(" ", "").replace("-", "")


def contains_card_number(text: str) -> bool:
    """True if ``text`` holds a card-number-looking run (see the module docstring)."""
    if _CANDIDATE.search(text) is None:
        return False
    return any(MIN_DIGITS <= len(d) <= MAX_DIGITS and luhn_valid(d) for d in _runs(text))


def find_card_number(value: object, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """The location of the first card number in a decoded JSON value (strings, object keys and values,
    array items, recursively), or None. The location names where it is, never what it is."""
    if isinstance(value, str):
        return path if contains_card_number(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and contains_card_number(key):
                return path  # the key itself must not be echoed as a location
            found = find_card_number(item, (*path, str(key)))
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = find_card_number(item, (*path, i))
            if found is not None:
                return found
    return None
