"""Problem documents → typed exceptions: pure, no I/O."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from payments.client import errors as e
from payments.client.core import problem_error
from payments.schemas.errors import ErrorCode

PJ = {"content-type": "application/problem+json"}


def problem(code: str, status: int, **extra: Any) -> bytes:
    doc = {"type": f"urn:payments:problem:{code}", "title": code.title(), "status": status}
    return orjson.dumps(doc | {"detail": f"about {code}", "code": code, "instance": "/v1/x"} | extra)


def test_every_stable_code_has_its_own_class() -> None:
    # A code added to ErrorCode without a class here would reach callers as UnknownProblem: fail instead.
    for code in ErrorCode:
        cls = e.error_class(code.value, 400)
        assert cls is not e.UnknownProblem, code
        assert cls.code_value == code.value


def test_a_decline_carries_everything_of_the_problem() -> None:
    body = problem("insufficient_funds", 402, payment_id="pay_1")
    err = problem_error(402, PJ, body, key="k-1", attempts=1)
    assert type(err) is e.InsufficientFunds
    assert isinstance(err, e.OperationFailed)
    assert isinstance(err, e.PaymentsClientError)
    assert (err.status, err.code, err.title, err.detail) == (
        402,
        "insufficient_funds",
        "Insufficient_Funds",
        "about insufficient_funds",
    )
    assert err.problem["instance"] == "/v1/x"
    assert err.operation_id == "pay_1"
    assert err.idempotency_key == "k-1"
    assert err.retriable is False


def test_psp_decline_exposes_the_psp_code() -> None:
    err = problem_error(
        402, PJ, problem("psp_declined", 402, top_up_id="top_1", psp_failure_code="card_declined")
    )
    assert isinstance(err, e.PspDeclined)
    assert (err.psp_failure_code, err.operation_id) == ("card_declined", "top_1")


@pytest.mark.parametrize(
    ("code", "status", "cls", "retriable"),
    [
        ("idempotency_key_in_use", 409, e.IdempotencyKeyInUse, True),
        ("idempotency_key_reused", 422, e.IdempotencyKeyReused, False),
        ("account_exists", 409, e.AccountExists, False),
        ("rate_limited", 429, e.RateLimited, True),
        ("intake_unavailable", 503, e.IntakeUnavailable, True),
        ("read_model_rebuilding", 503, e.ReadModelRebuilding, True),
        ("not_a_member", 403, e.NotAMember, False),
        ("account_not_found", 404, e.AccountNotFound, False),
        ("payment_not_found", 404, e.PaymentNotFound, False),
        ("card_number_not_allowed", 422, e.CardNumberNotAllowed, False),
    ],
)
def test_codes_map_to_classes_and_retriability(
    code: str, status: int, cls: type[e.PaymentsClientError], retriable: bool
) -> None:
    err = problem_error(status, PJ, problem(code, status))
    assert type(err) is cls
    assert err.retriable is retriable


def test_bases_catch_their_group() -> None:
    assert issubclass(e.NotAMember, e.Forbidden)
    assert issubclass(e.AccountNotFound, e.NotFound)
    assert issubclass(e.IntakeUnavailable, e.ServiceUnavailable)
    assert issubclass(e.IdempotencyKeyInUse, e.IdempotencyError)
    assert issubclass(e.CardNumberNotAllowed, e.ValidationFailed)


def test_validation_errors_are_listed() -> None:
    errs = [{"loc": ["body", "amount"], "msg": "must be > 0", "type": "greater_than"}]
    err = problem_error(422, PJ, problem("validation_error", 422, errors=errs))
    assert isinstance(err, e.ValidationFailed)
    assert err.errors == errs


def test_an_unknown_code_is_a_generic_problem_not_a_crash() -> None:
    err = problem_error(400, PJ, problem("brand_new_code", 400))
    assert type(err) is e.UnknownProblem
    assert (err.code, err.retriable) == ("brand_new_code", False)


def test_an_unknown_code_at_503_is_still_a_retriable_service_unavailable() -> None:
    err = problem_error(503, PJ, problem("brand_new_outage", 503))
    assert type(err) is e.ServiceUnavailable
    assert err.retriable is True


@pytest.mark.parametrize(
    ("status", "headers", "body", "retriable"),
    [
        (502, {"content-type": "text/html"}, b"<html>bad gateway</html>", False),
        (503, {"content-type": "text/plain"}, b"upstream down", True),
        (500, {"content-type": "application/json"}, b"[1, 2]", False),
        (500, {"content-type": "application/json"}, b"{not json", False),
        (400, PJ, b'{"title": "no code"}', False),
    ],
)
def test_an_answer_without_a_problem_document_is_unexpected(
    status: int, headers: dict[str, str], body: bytes, retriable: bool
) -> None:
    err = problem_error(status, headers, body)
    assert type(err) is e.UnexpectedResponse
    assert (err.status, err.code, err.retriable) == (status, None, retriable)
