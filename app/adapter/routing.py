"""Connexion's router, without the route scan a request to a fixed path does not need."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from connexion.middleware.abstract import ROUTING_CONTEXT
from connexion.middleware.routing import RoutingMiddleware, RoutingOperation
from connexion.middleware.routing import _scope as routed_scope
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from app import context
from app.adapter.passthrough import link_operations


class LiteralRoutes(RoutingMiddleware):
    """Connexion's routing, with a table for fixed paths: stock, every request is matched
    against the routes one regular expression at a time (about 8% of a license validation's
    CPU). The table holds each (path, method) of a route without path parameters that the
    stock router itself resolves to that route, so a hit is routed exactly as the router
    would route it; everything else (templated paths, wrong methods, unknown paths) takes
    the stock path. Either way it tells the edge which operation the request was routed to
    (by handler name), for the access log and metrics, including requests the validators
    then refuse."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.table: dict[tuple[str, str], tuple[str, RoutingOperation]] | None = None

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine for a table hit (app.adapter.passthrough says why).
        if scope["type"] == "http":
            table = self.table
            if table is None:
                table = self.table = literal_routes(self.router)
                link_operations(self.router)
            hit = table.get((get_route_path(scope), scope["method"]))
            note = context.note.get()
            if hit is not None:
                api_base_path, operation = hit
                if note is not None:
                    note.operation_id = operation.operation_id
                # What RoutingOperation does with the scope the router matched.
                routed = dict(scope)
                routed.setdefault("path_params", {})
                routing = routed.setdefault("extensions", {}).setdefault(ROUTING_CONTEXT, {})
                routing.update(
                    {"api_base_path": api_base_path, "operation_id": operation.operation_id}
                )
                return operation.next_app(routed, receive, send)
            return self._routed_by_scan(scope, receive, send, note)
        return super().__call__(scope, receive, send)

    async def _routed_by_scan(
        self, scope: Scope, receive: Receive, send: Send, note: context.RequestNote | None
    ) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # The stock router routes a copy of the scope, which it keeps in a context
            # variable; the operation it chose, if any, is written there.
            routed_copy = routed_scope.get(None)
            if note is not None and routed_copy is not None:
                extensions = routed_copy.get("extensions", {}).get(ROUTING_CONTEXT, {})
                note.operation_id = extensions.get("operation_id")


def literal_routes(router: Router) -> dict[tuple[str, str], tuple[str, RoutingOperation]]:
    table: dict[tuple[str, str], tuple[str, RoutingOperation]] = {}
    for mount in router.routes:
        if not (isinstance(mount, Mount) and isinstance(mount.app, Router)):
            continue
        for route in mount.app.routes:
            if not isinstance(route, Route) or route.param_convertors:
                continue
            if not isinstance(route.endpoint, RoutingOperation):
                continue
            path = mount.path + route.path
            for method in sorted(route.methods or ()):
                # Kept only if the stock router picks this very route for it.
                if (path, method) not in table and resolve(router, path, method) is route:
                    table[(path, method)] = (mount.path, route.endpoint)
    return table


def resolve(router: Router, path: str, method: str) -> BaseRoute | None:
    """The route Starlette's router hands (path, method) to: the first full match at each
    level, descending through mounts."""
    scope: dict[str, Any] = {"type": "http", "path": path, "root_path": "", "method": method}
    while True:
        for route in router.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                break
        else:
            return None
        if isinstance(route, Mount) and isinstance(route.app, Router):
            scope = {**scope, **child}
            router = route.app
            continue
        return route
