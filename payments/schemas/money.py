"""Money: integer minor units and ISO 4217 currencies. Floats never represent money here."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt

# ISO 4217 codes we accept, with their minor-unit exponent (kept for display; the API is minor units only).
CURRENCY_EXPONENT: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2,
    "RON": 2, "BGN": 2, "CAD": 2, "AUD": 2, "NZD": 2, "SGD": 2, "HKD": 2, "CNY": 2, "INR": 2, "BRL": 2,
    "MXN": 2, "ZAR": 2, "TRY": 2, "ILS": 2, "AED": 2, "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0,
    "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip

# 10^15 minor units: far above any real balance, far below 2^63 so sums of many amounts cannot overflow
# a signed 64-bit integer in downstream stores.
MAX_AMOUNT = 10**15


def _check_currency(code: str) -> str:
    if code not in CURRENCY_EXPONENT:
        raise ValueError(f"unknown or unsupported ISO 4217 currency {code!r}")
    return code


Currency = Annotated[
    str, Field(min_length=3, max_length=3, examples=["EUR"]), AfterValidator(_check_currency)
]
# StrictInt: 12.5, "125" and true are rejected rather than coerced, so a float can never become money.
PositiveAmount = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT, examples=[1250])]
SignedAmount = Annotated[StrictInt, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
NonNegativeAmount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT)]
