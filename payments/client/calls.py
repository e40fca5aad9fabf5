"""The API's operations as ``Call`` values (README "API conventions"), built from the request models of
``payments.schemas.api`` (validated here, before anything is sent) and read into its response models.
Pure: ``Client`` and ``AsyncClient`` send what these return.

Every write gets an Idempotency-Key: the caller's, or a fresh UUID4 for this one logical call.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from payments.client.core import Call
from payments.schemas.api import (
    AccountOut,
    AccountPending,
    AdjustmentOut,
    AdjustmentRequest,
    LedgerPage,
    MemberChangeOut,
    MemberRequest,
    OpenAccountRequest,
    PaymentOut,
    PaymentPage,
    PaymentRequest,
    TopUpOut,
    TopUpPage,
    TopUpRequest,
)
from payments.schemas.state import TERMINAL_STATUSES

M = TypeVar("M", bound=BaseModel)

_TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def _key(given: str | None) -> str:
    return given if given is not None else new_idempotency_key()


def _wait(wait_s: int | None) -> int | None:
    # The server clamps a long wait to its maximum (10 s) and says so in Preference-Applied; a negative
    # one is a caller bug, refused before anything is sent.
    if wait_s is not None and wait_s < 0:
        raise ValueError(f"wait_s must be >= 0, not {wait_s}")
    return wait_s


def _seg(value: str) -> str:
    """One path segment, percent-encoded (an id with a ``/`` must not reach another route)."""
    return quote(value, safe="")


def _parser(model: type[M]) -> Callable[[int, bytes], M]:
    def parse(_status: int, body: bytes) -> M:
        return model.model_validate_json(body)

    return parse


def _always_final(_status: int, _value: object) -> bool:
    return True


def _operation_final(status: int, value: PaymentOut | TopUpOut | AdjustmentOut) -> bool:
    return status == 201 or value.status in _TERMINAL


def _parse_account(status: int, body: bytes) -> AccountOut | AccountPending:
    return AccountPending.model_validate_json(body) if status == 202 else AccountOut.model_validate_json(body)


def _account_final(_status: int, value: AccountOut | AccountPending) -> bool:
    return isinstance(value, AccountOut)


def _member_final(_status: int, value: MemberChangeOut) -> bool:
    return not value.pending


def _page_params(limit: int | None, cursor: str | None) -> dict[str, str | int]:
    params: dict[str, str | int] = {}
    if limit is not None:
        params["limit"] = limit
    if cursor is not None:
        params["cursor"] = cursor
    return params


# --- accounts --------------------------------------------------------------------------------------------


def open_account(
    *,
    currency: str,
    members: Sequence[str],
    overdraft_limit: int = 0,
    idempotency_key: str | None = None,
    wait_s: int | None = None,
) -> Call[AccountOut | AccountPending]:
    body = OpenAccountRequest(currency=currency, members=list(members), overdraft_limit=overdraft_limit)
    return Call(
        "POST",
        "/v1/accounts",
        _parse_account,
        _account_final,
        body,
        None,
        _key(idempotency_key),
        _wait(wait_s),
    )


def get_account(account_id: str) -> Call[AccountOut]:
    return Call("GET", f"/v1/accounts/{_seg(account_id)}", _parser(AccountOut), _always_final)


def add_member(
    account_id: str, user_id: str, *, idempotency_key: str | None = None, wait_s: int | None = None
) -> Call[MemberChangeOut]:
    return Call(
        "POST",
        f"/v1/accounts/{_seg(account_id)}/members",
        _parser(MemberChangeOut),
        _member_final,
        MemberRequest(user_id=user_id),
        None,
        _key(idempotency_key),
        _wait(wait_s),
    )


def remove_member(
    account_id: str, user_id: str, *, idempotency_key: str | None = None, wait_s: int | None = None
) -> Call[MemberChangeOut]:
    return Call(
        "DELETE",
        f"/v1/accounts/{_seg(account_id)}/members/{_seg(user_id)}",
        _parser(MemberChangeOut),
        _member_final,
        None,
        None,
        _key(idempotency_key),
        _wait(wait_s),
    )


def adjust_balance(
    account_id: str,
    *,
    amount: int,
    currency: str,
    reason: str,
    idempotency_key: str | None = None,
    wait_s: int | None = None,
) -> Call[AdjustmentOut]:
    return Call(
        "POST",
        f"/v1/accounts/{_seg(account_id)}/adjustments",
        _parser(AdjustmentOut),
        _operation_final,
        AdjustmentRequest(amount=amount, currency=currency, reason=reason),
        None,
        _key(idempotency_key),
        _wait(wait_s),
    )


# --- payments --------------------------------------------------------------------------------------------


def create_payment(
    account_id: str,
    *,
    amount: int,
    currency: str,
    payee: str,
    description: str | None = None,
    idempotency_key: str | None = None,
    wait_s: int | None = None,
) -> Call[PaymentOut]:
    return Call(
        "POST",
        f"/v1/accounts/{_seg(account_id)}/payments",
        _parser(PaymentOut),
        _operation_final,
        PaymentRequest(amount=amount, currency=currency, payee=payee, description=description),
        None,
        _key(idempotency_key),
        _wait(wait_s),
    )


def get_payment(payment_id: str) -> Call[PaymentOut]:
    return Call("GET", f"/v1/payments/{_seg(payment_id)}", _parser(PaymentOut), _operation_final)


def list_payments(
    account_id: str, *, limit: int | None = None, cursor: str | None = None
) -> Call[PaymentPage]:
    return Call(
        "GET",
        f"/v1/accounts/{_seg(account_id)}/payments",
        _parser(PaymentPage),
        _always_final,
        params=_page_params(limit, cursor),
    )


# --- top-ups ---------------------------------------------------------------------------------------------


def create_top_up(
    account_id: str,
    *,
    amount: int,
    currency: str,
    payment_method: str,
    idempotency_key: str | None = None,
    wait_s: int | None = None,
) -> Call[TopUpOut]:
    return Call(
        "POST",
        f"/v1/accounts/{_seg(account_id)}/top-ups",
        _parser(TopUpOut),
        _operation_final,
        TopUpRequest(amount=amount, currency=currency, payment_method=payment_method),
        None,
        _key(idempotency_key),
        _wait(wait_s),
    )


def get_top_up(top_up_id: str) -> Call[TopUpOut]:
    return Call("GET", f"/v1/top-ups/{_seg(top_up_id)}", _parser(TopUpOut), _operation_final)


def list_top_ups(account_id: str, *, limit: int | None = None, cursor: str | None = None) -> Call[TopUpPage]:
    return Call(
        "GET",
        f"/v1/accounts/{_seg(account_id)}/top-ups",
        _parser(TopUpPage),
        _always_final,
        params=_page_params(limit, cursor),
    )


# --- ledger ----------------------------------------------------------------------------------------------


def list_ledger(account_id: str, *, limit: int | None = None, cursor: str | None = None) -> Call[LedgerPage]:
    return Call(
        "GET",
        f"/v1/accounts/{_seg(account_id)}/ledger",
        _parser(LedgerPage),
        _always_final,
        params=_page_params(limit, cursor),
    )
