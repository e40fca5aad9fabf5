"""Card numbers in the URL are refused before routing (422 ``card_number_not_allowed``).

A plain ASGI middleware: it looks at the decoded path and the percent-decoded query string, never at the
body (request bodies are checked once, by the request models: ``payments.schemas.api``), so it adds one
regular-expression scan of a short string per request. It runs before routing, authentication and every
handler, so a card number in a path never reaches a 404 detail, a log line or Redis; its problem has no
``instance``, because the path is the very thing that must not be echoed.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Receive, Scope, Send

from payments.gateway.problems import problem_response
from payments.schemas.errors import ErrorCode
from payments.schemas.pan import contains_card_number


class CardNumberGuard:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _url_has_card_number(scope):
            response = problem_response(
                ErrorCode.CARD_NUMBER_NOT_ALLOWED,
                "card numbers are not accepted in a URL; send a payment-method token (tok_...)",
                instance=None,
            )
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)


def _url_has_card_number(scope: Scope) -> bool:
    if contains_card_number(str(scope.get("path", ""))):
        return True
    query = bytes(scope.get("query_string", b""))
    return bool(query) and contains_card_number(unquote_plus(query.decode("latin-1")))
