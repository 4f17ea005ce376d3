"""Connexion's router, without the route scan a request to a fixed path does not need."""

from __future__ import annotations

from typing import Any

from connexion.middleware.abstract import ROUTING_CONTEXT
from connexion.middleware.routing import RoutingMiddleware, RoutingOperation
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import Receive, Scope, Send


class LiteralRoutes(RoutingMiddleware):
    """Connexion's routing, with a table for fixed paths: stock, every request is matched
    against the routes one regular expression at a time (about 8% of a license validation's
    CPU). The table holds each (path, method) of a route without path parameters that the
    stock router itself resolves to that route, so a hit is routed exactly as the router
    would route it; everything else (templated paths, wrong methods, unknown paths) takes
    the stock path."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.table: dict[tuple[str, str], tuple[str, RoutingOperation]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            table = self.table
            if table is None:
                table = self.table = literal_routes(self.router)
            hit = table.get((get_route_path(scope), scope["method"]))
            if hit is not None:
                api_base_path, operation = hit
                # What RoutingOperation does with the scope the router matched.
                routed = dict(scope)
                routed.setdefault("path_params", {})
                context = routed.setdefault("extensions", {}).setdefault(ROUTING_CONTEXT, {})
                context.update(
                    {"api_base_path": api_base_path, "operation_id": operation.operation_id}
                )
                await operation.next_app(routed, receive, send)
                return
        await super().__call__(scope, receive, send)


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
