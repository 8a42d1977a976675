"""One metrics label per route: unknown paths must not each become a Prometheus series.

BentoML's metrics, access log and tracing middleware sit outside every user
middleware and label a request by its raw path, so 5,000 random paths grew
/metrics from 146 KB to 21.6 MB. `RouteLabels`, wrapped around the whole app
by api/connections.py, shows them the matching route's template instead
(`/ui` for anything under the web page, `/(unmatched)` for unknown paths);
`RestorePath`, the first user middleware, puts the real path back before
routing, so the app itself sees the request unchanged.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

UNMATCHED = "/(unmatched)"
ORIGINAL_PATH = "faceserve.original_path"


def _routes(app: ASGIApp) -> list[BaseRoute]:
    """The routes of the Starlette app inside uvicorn's wrappers (each keeps the next as `.app`)."""
    inner: object = app
    while not isinstance(inner, Starlette):
        inner = getattr(inner, "app", None)
        if inner is None:
            return []
    return list(inner.routes)


def route_label(routes: list[BaseRoute], scope: Scope) -> str:
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return getattr(route, "path", UNMATCHED) or UNMATCHED
    return UNMATCHED


class RouteLabels:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes: list[BaseRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.routes is None:  # the routes exist once BentoML has built its app, not at wrap time
                self.routes = _routes(self.app)
            label = route_label(self.routes, scope)
            if label != scope["path"]:
                scope = {**scope, "path": label, ORIGINAL_PATH: scope["path"]}
        await self.app(scope, receive, send)


class RestorePath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        original = scope.get(ORIGINAL_PATH)
        if original is not None:
            scope = {**scope, "path": original}
        await self.app(scope, receive, send)
