"""Connexion's spec and Swagger UI middleware, stepped over for the paths it does not serve."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send


class SpecRoutesOnly(SwaggerUIMiddleware):
    """Stock, every request runs this middleware's router (a Mount per API, a copy of the
    scope) only to fall through to the API behind it: about 6% of a license validation's
    CPU. Requests that cannot reach one of its routes go straight on; the others take the
    stock path, so what it serves and how (redirects included) is unchanged."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.prefixes: tuple[str, ...] = ()

    def add_api(self, *args: Any, **kwargs: Any) -> None:
        super().add_api(*args, **kwargs)
        self.prefixes = tuple(sorted(set(route_prefixes(self.router.routes, ""))))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def route_prefixes(routes: Iterable[BaseRoute], base: str) -> Iterable[str]:
    """A prefix of every path a route could match, or redirect to with a slash added or
    removed; an empty prefix (a route that could match anything) sends every path through."""
    for route in routes:
        if isinstance(route, Mount):
            if isinstance(route.app, Router):
                yield from route_prefixes(route.app.routes, base + route.path)
            else:  # an app mounted whole (the UI's static files)
                yield (base + route.path).rstrip("/")
        elif isinstance(route, Route):
            yield (base + route.path).split("{", 1)[0].rstrip("/")
        else:
            yield ""
