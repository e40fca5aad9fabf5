"""What the simulated card network answers for each test token, pure."""

from __future__ import annotations

from dataclasses import dataclass

from payments.psp_sim.errors import UnknownPaymentMethod
from payments.psp_sim.models import MovementStatus


@dataclass(frozen=True)
class Outcome:
    status: MovementStatus
    failure_code: str | None = None


# The public test surface (docs/design.md §6): users' suites depend on these names; add, never rename.
CARD_TOKENS: dict[str, Outcome] = {
    "tok_ok": Outcome("succeeded"),
    "tok_declined": Outcome("failed", "card_declined"),
    "tok_insufficient_funds": Outcome("failed", "insufficient_funds"),
    "tok_expired_card": Outcome("failed", "expired_card"),
}


def charge_outcome(payment_method: str) -> Outcome:
    outcome = CARD_TOKENS.get(payment_method)
    if outcome is None:
        raise UnknownPaymentMethod(
            f"unknown payment method; test tokens are {', '.join(CARD_TOKENS)}",
        )
    return outcome
