"""``/v1/accounts/{id}/members`` (admin): add and remove members.

Membership changes are idempotent by nature (adding a member twice, or removing a non-member, changes
nothing and the processor publishes no result for it), so ``Idempotency-Key`` is optional here. With a
key, the usual replay / 409 / 422 rules apply and a retry re-publishes the same command id; without one,
every request publishes a fresh command (``mem_<uuid4 hex>``), which is harmless for the same reason.

The command is always published, even if the read model already shows the requested state: an earlier
change (e.g. a removal) may be in flight and would otherwise win. The answer is 202 ``pending: true``;
with ``Prefer: wait=N``, 200 ``pending: false`` as soon as the read model shows the requested state (which
includes "it already was so"), else 202 at the time-out.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from payments.gateway import render
from payments.gateway.deps import (
    AccountId,
    AdminAccount,
    AdminPrincipal,
    OptionalIdempotencyKey,
    PreferWait,
    RateLimited,
    Services,
)
from payments.gateway.idempotency_keys import derive_member_command_id, request_fingerprint
from payments.gateway.intake import Submission, submit
from payments.gateway.openapi import AUTH, INTAKE, responses
from payments.schemas.api import MemberChangeOut, MemberRequest
from payments.schemas.commands import AddMember, RemoveMember
from payments.schemas.errors import ErrorCode as E
from payments.schemas.state import AccountSnapshot

router = APIRouter(tags=["members"])

MEMBERS_ROUTE = "/v1/accounts/{account_id}/members"
MEMBER_ROUTE = "/v1/accounts/{account_id}/members/{user_id}"

UserId = Annotated[
    str, Path(description="member user id", pattern=r"^[A-Za-z0-9_.:\-]{1,128}$", examples=["carol"])
]

_RESPONSES = responses(
    {
        200: (MemberChangeOut, "the read model shows the change (only with Prefer: wait)"),
        202: (MemberChangeOut, "published (`pending: true`), or not shown within the wait"),
    },
    *AUTH, E.FORBIDDEN, E.ACCOUNT_NOT_FOUND, *INTAKE,
    keyed=True, prefer=True,
)  # fmt: skip


async def _change(
    services: Services,
    principal: str,
    key: str | None,
    wait: int | None,
    cmd: AddMember | RemoveMember,
    method: str,
    route: str,
) -> Response:
    sub: Submission[AccountSnapshot] = Submission(
        principal=principal,
        key=key,
        fingerprint=request_fingerprint(method, route, cmd.account_id, MemberRequest(user_id=cmd.user_id)),
        command=cmd,
        lookup=lambda: services.read_model.account(cmd.account_id),
        is_final=lambda s: render.is_open(s) and render.membership_shown(s, cmd),
        conflicts=lambda _s: False,
        render=lambda s: render.member_answer(s, cmd),
        wait_s=wait,
        echo_preference=wait is not None,
        dedupe_by_read_model=False,
    )
    return await submit(services, sub)


def _command_id(principal: str, account_id: str, key: str | None) -> str:
    # With a key, a retry repeats the id (the method and user are bound to the key by its fingerprint).
    return "mem_" + uuid.uuid4().hex if key is None else derive_member_command_id(principal, account_id, key)


@router.post(
    MEMBERS_ROUTE,
    status_code=202,
    response_model=MemberChangeOut,
    operation_id="add_member",
    summary="Add a member (admin)",
    responses=_RESPONSES,
)
async def add_member(
    account_id: AccountId,
    principal: AdminPrincipal,
    account: AdminAccount,
    key: OptionalIdempotencyKey,
    wait: PreferWait,
    _limited: RateLimited,
    body: MemberRequest,
    services: Services,
) -> Response:
    """Publishes ``AddMember``: the user may then pay from and read the account. 202 ``pending``; with
    ``Prefer: wait=N`` 200 once the read model lists the member. ``Idempotency-Key`` is optional."""
    cmd = AddMember(
        command_id=_command_id(principal.user_id, account_id, key),
        account_id=account_id,
        issued_at=services.clock_ms(),
        user_id=body.user_id,
        principal=principal.user_id,
    )
    return await _change(services, principal.user_id, key, wait, cmd, "POST", MEMBERS_ROUTE)


@router.delete(
    MEMBER_ROUTE,
    status_code=202,
    response_model=MemberChangeOut,
    operation_id="remove_member",
    summary="Remove a member (admin)",
    responses=_RESPONSES,
)
async def remove_member(
    account_id: AccountId,
    user_id: UserId,
    principal: AdminPrincipal,
    account: AdminAccount,
    key: OptionalIdempotencyKey,
    wait: PreferWait,
    _limited: RateLimited,
    services: Services,
) -> Response:
    """Publishes ``RemoveMember``: new payments by the user are rejected; its payments already decided
    are unaffected. 202 ``pending``; with ``Prefer: wait=N`` 200 once the read model no longer lists the
    member. ``Idempotency-Key`` is optional."""
    cmd = RemoveMember(
        command_id=_command_id(principal.user_id, account_id, key),
        account_id=account_id,
        issued_at=services.clock_ms(),
        user_id=user_id,
        principal=principal.user_id,
    )
    return await _change(services, principal.user_id, key, wait, cmd, "DELETE", MEMBER_ROUTE)
