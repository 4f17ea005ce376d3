"""Connexion operations whose handler chain and argument plan are built once, not per request."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from connexion import context
from connexion.apps.asynchronous import AsyncApi, AsyncApp, AsyncOperation
from connexion.decorators import StarletteDecorator
from connexion.decorators.parameter import (
    CONTEXT_NAME,
    _get_query_defaults,
    _get_val_from_param,
    sanitized,
    unwrap_decorators,
)
from connexion.decorators.parameter import pythonic as pythonic_name
from connexion.decorators.response import AsyncResponseDecorator
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.operations import AbstractOperation, OpenAPIOperation
from connexion.utils import inspect_function_arguments, is_json_mimetype, is_null, is_nullable
from starlette.types import Receive, Scope, Send

from app import context as app_context

# Where app.openapi31's body validator leaves the JSON body it read (and validated): the
# bytes, and the document it parsed from them (integers beyond 64 bits exact).
RAW_BODY_KEY = "coditect.raw_body"
PARSED_BODY_KEY = "coditect.parsed_body"
# Where app.openapi31's parameter validator leaves the query parameters it resolved.
QUERY_KEY = "coditect.query"


class PreparedOperation(AsyncOperation):
    """Stock Connexion (3.1-3.3) rebuilds the decorator chain, inspects the handler's signature
    and re-derives the URI parser from the spec on every call; none of it depends on the
    request, so it is built at the first call (the operation's context exists then) and kept."""

    _prepared: Prepared | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        prepared = self._prepared
        if prepared is None:
            prepared = self._prepared = self._prepare()
        # The peer's host, for what the handler records (app.context.client_ip(): audit
        # entries, sessions), so that domain code never touches the request.
        client = scope.get("client")
        token = app_context.client_host.set(client[0] if client else None)
        try:
            if prepared.decorated is not None:  # Connexion's own decorator chain
                response = await prepared.decorated(prepared.request(scope, receive))
            else:
                # The handler called here, with Connexion's conversion of what it returns,
                # rather than through its response decorator's and the plan's own coroutines:
                # each coroutine is re-entered after every database round trip (-1.1% of a
                # getCurrentUser: 1,258,120 -> 1,243,712 instructions, -0.5% of a license
                # validation; in process on uvloop, measured 2026-11-30).
                plan = prepared.plan
                assert plan is not None  # Prepared holds one or the other
                request = prepared.request(scope, receive)
                arguments = plan.ready_arguments(request)
                if arguments is None:
                    arguments = await plan.arguments(request)
                response = prepared.framework_response(await self._fn(**arguments))
        finally:
            app_context.client_host.reset(token)
        return await response(scope, receive, send)

    def _prepare(self) -> Prepared:
        decorator = StarletteDecorator(
            pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )
        uri_parser = decorator.uri_parser  # reads context.operation: this operation's spec
        get_request = decorator.framework.get_request
        plan = ArgumentPlan.build(context.operation, self._fn, decorator.pythonic_params)

        def request(scope: Scope, receive: Receive) -> ConnexionRequest:
            # The request object StarletteDecorator builds, over the scope and receive this
            # operation was called with rather than through werkzeug proxies of Connexion's
            # context variables (-1.8% of a validation: 1,487,217 -> 1,461,104 instructions,
            # -0.8% of a getCurrentUser; in process on uvloop, measured 2026-11-30). The scope
            # is the router's copy: same extensions (the validators' stash), its path params.
            return get_request(uri_parser=uri_parser, scope=scope, receive=receive)

        responses = AsyncResponseDecorator(framework=decorator.framework, jsonifier=self.jsonifier)
        framework = decorator.framework

        def framework_response(returned: Any) -> Any:
            # What AsyncResponseDecorator's wrapper does with a handler's return value.
            if framework.is_framework_response(returned):
                return returned
            if isinstance(returned, ConnexionResponse):
                return framework.connexion_to_framework_response(returned)
            return responses.build_framework_response(returned)

        decorated = decorator.decorate(self._fn) if plan is None else None
        return Prepared(plan, request, framework_response, decorated)


@dataclass(frozen=True)
class Prepared:
    """What an operation's calls share: its argument plan (None: Connexion's own decorator
    chain, `decorated`, serves it), how its request object is made, and Connexion's
    conversion of a handler's return value to a response."""

    plan: ArgumentPlan | None
    request: Callable[[Scope, Receive], ConnexionRequest]
    framework_response: Callable[[Any], Any]
    decorated: Callable[[ConnexionRequest], Awaitable[Any]] | None


@dataclass(frozen=True)
class ArgumentPlan:
    """The handler's keyword arguments, worked out once from the operation instead of by
    Connexion's general parameter decorator on every request (which also re-reads and
    re-parses the body the validator already parsed, and looks for form files in JSON).
    Each value is made by Connexion's own conversion functions, so handlers see exactly
    what stock Connexion gives them; operations the plan does not cover keep the stock
    decorator."""

    sanitize: Callable[[str], str]
    path: dict[str, tuple[str, dict[str, Any]]]  # route name -> (argument, definition)
    query: tuple[tuple[str, str, dict[str, Any], bool, Any], ...]  # (+ has default, default)
    body: str | None  # the argument taking the JSON body
    body_nullable: bool
    body_default: Any

    @classmethod
    def build(
        cls, operation: Any, function: Callable[..., Any], pythonic: bool
    ) -> ArgumentPlan | None:
        """None when the operation needs Connexion's general decorator: a sync handler, **kwargs
        or context arguments, form or non-JSON bodies, object-typed query parameters."""
        sanitize = pythonic_name if pythonic else sanitized
        unwrapped = unwrap_decorators(function)
        if not isinstance(operation, OpenAPIOperation) or not inspect.iscoroutinefunction(
            unwrapped
        ):
            return None
        arguments, has_kwargs = inspect_function_arguments(unwrapped)
        if has_kwargs or CONTEXT_NAME in arguments:
            return None
        path: dict[str, tuple[str, dict[str, Any]]] = {}
        query: list[tuple[str, str, dict[str, Any], bool, Any]] = []
        covered: set[str] = set()
        query_definitions = {p["name"]: p for p in operation.parameters if p["in"] == "query"}
        defaults = _get_query_defaults(query_definitions)
        for param in operation.parameters:
            name, where = param["name"], param["in"]
            if where == "path":
                path[name] = (sanitize(name), param)
                covered.add(sanitize(name))
            elif where == "query" and sanitize(name) in arguments:
                if param.get("schema", {}).get("type") == "object":
                    return None
                query.append((name, sanitize(name), param, name in defaults, defaults.get(name)))
                covered.add(sanitize(name))
        body = None
        nullable, default = False, None
        if operation.request_body:
            consumes = operation.consumes
            if len(consumes) != 1 or not is_json_mimetype(consumes[0]):
                return None
            body = sanitize(operation.body_name(consumes[0]))
            schema = operation.body_schema(consumes[0])
            nullable, default = is_nullable(schema), schema.get("default", {})
            if body in arguments:
                covered.add(body)
            else:
                body = None
        if not set(arguments) <= covered:
            return None  # an argument Connexion would fill from the context
        return cls(sanitize, path, tuple(query), body, nullable, default)

    def ready_arguments(self, request: ConnexionRequest) -> dict[str, Any] | None:
        """The arguments, when nothing must be awaited for them (no body, or the body the
        validator parsed): None otherwise, and `arguments` makes them."""
        if self.body is None:
            return self._parameters(request)
        extensions = request.scope.get("extensions") or {}
        if PARSED_BODY_KEY not in extensions:
            return None
        kwargs = self._parameters(request)
        kwargs[self.body] = self._body(extensions[PARSED_BODY_KEY])
        return kwargs

    async def arguments(self, request: ConnexionRequest) -> dict[str, Any]:
        kwargs = self._parameters(request)
        if self.body is not None:
            kwargs[self.body] = self._body(await _json_body(request))
        return kwargs

    def _parameters(self, request: ConnexionRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.path:
            # As Connexion does: every path value, converted where the spec defines it.
            for name, value in request.path_params.items():
                known = self.path.get(name)
                if known is None:
                    kwargs[self.sanitize(name)] = value
                else:
                    kwargs[known[0]] = _get_val_from_param(value, known[1])
        if self.query:
            extensions = request.scope.get("extensions") or {}
            values = extensions.get(QUERY_KEY)
            if values is None:
                values = request.query_params
            for name, argument, definition, has_default, default in self.query:
                if name in values:
                    kwargs[argument] = _get_val_from_param(values[name], definition)
                elif has_default:
                    kwargs[argument] = _get_val_from_param(deepcopy(default), definition)
        return kwargs

    def _body(self, body: Any) -> Any:
        # Connexion's rules for a JSON body argument (_get_body_argument_json).
        if self.body_nullable and is_null(body):
            return None
        if body is None:
            return deepcopy(self.body_default)
        return body


async def _json_body(request: ConnexionRequest) -> Any:
    extensions = request.scope.get("extensions") or {}
    if PARSED_BODY_KEY in extensions:
        # The validator's document, not a second parse of the same bytes (-0.1% of a license
        # validation: 1,700,677 -> 1,698,630 instructions, measured 2026-11-30; kept because
        # the validator now sees the exact integers the handler gets).
        return extensions[PARSED_BODY_KEY]
    raw = extensions.get(RAW_BODY_KEY)
    if raw is None:
        return await request.get_body()
    # Decoded as Connexion's request.json() does (stdlib json, None when undecodable), so the
    # handler gets what it always got: integers beyond 64 bits stay exact, for one.
    try:
        return json.loads(raw)
    except ValueError:
        return None


class PreparedApi(AsyncApi):
    def make_operation(self, operation: AbstractOperation) -> AsyncOperation:
        return PreparedOperation.from_operation(
            operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )


def use_prepared_operations(app: AsyncApp) -> None:
    """Call before add_api: every API added afterwards makes PreparedOperations."""
    app._middleware_app.api_cls = PreparedApi
