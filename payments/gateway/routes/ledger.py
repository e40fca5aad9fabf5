"""``/v1/accounts/{id}/ledger`` (member, or admin): the account's ledger transactions, paged."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from redis.exceptions import RedisError

from payments.gateway import access, render
from payments.gateway.deps import AccountId, CurrentPrincipal, Services
from payments.gateway.errors import DependencyUnavailable, ReadModelRebuilding
from payments.gateway.openapi import READ, responses
from payments.gateway.pages import DEFAULT_LIMIT, CursorParam, Limit, next_cursor, parse_cursor
from payments.schemas.api import LedgerPage
from payments.schemas.errors import ErrorCode as E

router = APIRouter(tags=["ledger"])


@router.get(
    "/v1/accounts/{account_id}/ledger",
    response_model=LedgerPage,
    operation_id="list_account_ledger",
    summary="The account's ledger transactions, ascending by seq (paged)",
    responses=responses(
        {200: (LedgerPage, "a page of ledger transactions")},
        *READ, E.ACCOUNT_NOT_FOUND, query_codes=(E.VALIDATION_ERROR,),
    ),
)  # fmt: skip
async def list_ledger(
    account_id: AccountId,
    principal: CurrentPrincipal,
    services: Services,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Response:
    """Every balanced double-entry transaction that touched the account (payments captured, top-ups
    credited, adjustments), with its postings and ``net``, its effect on the account's posted balance.
    Eventually consistent like every read: a transaction appears shortly after its result."""
    after = parse_cursor(cursor)  # 400 before any I/O
    await access.readable_account(services, principal, account_id)
    try:
        txs, entries = await services.read_model.ledger_page(account_id, after, limit + 1)
    except RedisError as exc:
        raise DependencyUnavailable("the read model is unavailable") from exc
    except ReadModelRebuilding:
        services.metrics.read_model_rebuilding.labels("read").inc()
        raise
    shown = {tx_id for tx_id, _ in entries[:limit]}
    items = [render.ledger_entry_out(tx, account_id) for tx in txs if tx.tx_id in shown]
    page = LedgerPage(items=items, next_cursor=next_cursor(entries, limit))
    return render.json_answer(200, page).response()
