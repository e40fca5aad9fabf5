"""Paged listings (``?limit=&cursor=``) and single-operation reads, shared by the resource routes.

Lists are ascending by account ``seq`` (operations: the seq that created them; ledger: the transaction's
seq), served from the per-account indexes the projector keeps (see ``readmodel``). ``limit`` defaults to
50 and is at most 200; ``cursor`` is the opaque ``next_cursor`` of the previous page (400
``validation_error`` for anything else). A page may hold fewer than ``limit`` items while ``next_cursor``
is set (operations that expired from the read model are skipped); ``next_cursor`` is null on the last page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Query
from redis.exceptions import RedisError

from payments.gateway import access
from payments.gateway.auth import Principal
from payments.gateway.cursors import Cursor, decode_cursor, encode_cursor
from payments.gateway.errors import DependencyUnavailable, GatewayError, ReadModelRebuilding
from payments.gateway.services import GatewayServices
from payments.schemas.errors import ErrorCode
from payments.schemas.state import Operation, OperationKind

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size (default {DEFAULT_LIMIT})")]
CursorParam = Annotated[
    str | None, Query(description="the `next_cursor` of the previous page; omit for the first page")
]


def next_cursor(entries: list[tuple[str, int]], limit: int) -> str | None:
    """The cursor after the page's last entry if more entries follow (we fetched ``limit + 1``)."""
    if len(entries) <= limit:
        return None
    member, seq = entries[limit - 1]
    return encode_cursor(Cursor(seq, member))


def parse_cursor(cursor: str | None) -> Cursor | None:
    return None if cursor is None else decode_cursor(cursor)


async def operations_page(
    services: GatewayServices,
    principal: Principal,
    account_id: str,
    kind: OperationKind,
    limit: int,
    cursor: str | None,
    out: Callable[[Operation], T],
) -> tuple[list[T], str | None]:
    after = parse_cursor(cursor)  # 400 before any I/O
    await access.readable_account(services, principal, account_id)
    try:
        ops, entries = await services.read_model.operations_page(account_id, kind, after, limit + 1)
    except RedisError as exc:
        raise DependencyUnavailable("the read model is unavailable") from exc
    except ReadModelRebuilding:
        services.metrics.read_model_rebuilding.labels("read").inc()
        raise
    shown = {op_id for op_id, _ in entries[:limit]}
    return [out(op) for op in ops if op.op_id in shown], next_cursor(entries, limit)


async def readable_operation(
    services: GatewayServices, principal: Principal, op_id: str, kind: OperationKind, missing: GatewayError
) -> Operation:
    """One operation of ``kind`` the caller may read (member of its account, or admin); ``missing`` if it
    does not exist (or is of another kind, or its account is gone)."""
    try:
        op = await services.read_model.operation(op_id)
    except RedisError as exc:
        raise DependencyUnavailable("the read model is unavailable") from exc
    except ReadModelRebuilding:
        services.metrics.read_model_rebuilding.labels("read").inc()
        raise
    if op is None or op.kind is not kind:
        raise missing
    try:
        await access.readable_account(services, principal, op.account_id)
    except GatewayError as exc:
        if exc.code is ErrorCode.ACCOUNT_NOT_FOUND:
            raise missing from exc
        raise
    return op
