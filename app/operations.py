"""Connexion operations that build their decorated handler once instead of on every request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from connexion import context
from connexion.apps.asynchronous import AsyncApi, AsyncApp, AsyncOperation
from connexion.decorators import StarletteDecorator
from connexion.operations import AbstractOperation
from starlette.types import Receive, Scope, Send

Prepared = Callable[[], Awaitable[Any]]


class PreparedOperation(AsyncOperation):
    """Stock Connexion (3.1-3.3) rebuilds the decorator chain, inspects the handler's signature
    and re-derives the URI parser from the spec on every call; none of it depends on the
    request, so it is built at the first call (the operation's context exists then) and kept."""

    _prepared: Prepared | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        prepared = self._prepared
        if prepared is None:
            prepared = self._prepared = self._prepare()
        response = await prepared()
        return await response(scope, receive, send)

    def _prepare(self) -> Prepared:
        decorator = StarletteDecorator(
            pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )
        handler = decorator.decorate(self._fn)
        uri_parser = decorator.uri_parser  # reads context.operation: this operation's spec
        get_request = decorator.framework.get_request

        async def call() -> Any:
            # The same request object StarletteDecorator builds (over the context proxies).
            request = get_request(
                uri_parser=uri_parser, scope=context.scope, receive=context.receive
            )
            return await handler(request)

        return call


class PreparedApi(AsyncApi):
    def make_operation(self, operation: AbstractOperation) -> AsyncOperation:
        return PreparedOperation.from_operation(
            operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )


def use_prepared_operations(app: AsyncApp) -> None:
    """Call before add_api: every API added afterwards makes PreparedOperations."""
    app._middleware_app.api_cls = PreparedApi
