"""Repeated searches answered before routing, from the page the search route answered last time.

A search's answer depends only on its query string and the catalog revision, and a few hundred
queries make most of a catalog's traffic. The search route keeps each page it answers in the
current view's `PageCache`; this middleware answers the same query string again from there,
without FastAPI's routing, parameter validation and dependency machinery (which cost about as
much as the search itself). It still checks the caller's token, runs inside the kit's tracing and
request metrics, and leaves everything else to the route: a miss, an unknown or bad parameter, a
missing or refused token get exactly the route's answer.
"""

from __future__ import annotations

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from atlas_catalog.context import context_of
from atlas_events.auth import PrincipalVerifier

SEARCH_PATH = "/v1/prestations"
_JSON_HEADERS = [(b"content-type", b"application/json")]


class CachedSearch:
    """ASGI middleware answering `GET /v1/prestations?...` from the current view's kept pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: BaseRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == SEARCH_PATH:
            page = await self._kept_page(scope)
            if page is not None:
                scope["route"] = self._route  # the name the metrics and the span use
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(page)).encode()),
                            *_JSON_HEADERS,
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": page})
                return
            await self.app(scope, receive, send)
            self._route = self._route or scope.get("route")  # the router set it on the way
            return
        await self.app(scope, receive, send)

    async def _kept_page(self, scope: Scope) -> bytes | None:
        """The page kept for this query string at the current revision, if the caller's token
        verifies; None sends the request down to the route."""
        token = _bearer(scope)
        if token is None:
            return None
        state = scope["app"].state
        context = context_of(state.runtime)
        view = await context.views.current()
        page = view.pages.get(scope["query_string"])
        if page is None:
            return None
        verifier: PrincipalVerifier = state.auth
        try:
            principal = await verifier.verify(token)
        except Exception:  # refused or unverifiable: the route answers with the precise error
            return None
        scope.setdefault("state", {})["principal"] = principal
        return page


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None
