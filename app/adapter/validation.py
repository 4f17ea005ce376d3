"""Connexion's request validation with each operation's validators built once, not per request."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.operations import AbstractOperation
from connexion.utils import is_nullable
from starlette.types import Receive, Scope, Send

from app.adapter.passthrough import PassThroughRouted

# Body validators remembered per operation, by the Content-Type value sent: the values a
# client can send are unbounded, so past this many an operation builds one per request, as
# stock Connexion does for all of them.
MAX_REMEMBERED_CONTENT_TYPES = 8
_UNKNOWN = object()


class PreparedRequestValidation(RequestValidationOperation):
    """Stock Connexion 3.3 builds two URI parsers, a parameter validator, a media-type table
    and a body validator on every request, and finds the Content-Type through runtime typing
    constructs. Only the Content-Type header varies between requests, so the parameter
    validator is built once and the body validator once per Content-Type value, by Connexion's
    own code; the checks themselves run per request as before."""

    _parameters: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bodies: dict[bytes | None, Any] = {}

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine when there is no body to read (app.adapter.passthrough says why).
        parameters = self._parameters
        if parameters is None:
            parameters = self._parameters = self._parameter_validator()
        parameters.validate(scope)
        content_type = None
        for name, value in scope["headers"]:
            if name.lower() == b"content-type":
                content_type = value
                break
        body = self._bodies.get(content_type, _UNKNOWN)
        if body is _UNKNOWN:
            # Raises for a media type the operation does not accept: not remembered.
            body = self._body_validator(content_type)
            if len(self._bodies) < MAX_REMEMBERED_CONTENT_TYPES:
                self._bodies[content_type] = body
        if body is None:
            return self.next_app(scope, receive, send)
        return self._with_body(body, scope, receive, send)

    async def _with_body(self, body: Any, scope: Scope, receive: Receive, send: Send) -> None:
        receive, scope = await body.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)

    def _parameter_validator(self) -> Any:
        operation = self._operation
        return self._validator_map["parameter"](
            operation.parameters,
            uri_parser=operation._uri_parser_class(
                operation.parameters, operation.body_definition()
            ),
            strict_validation=self.strict_validation,
            security_query_params=self.security_query_params,
        )

    def _body_validator(self, content_type: bytes | None) -> Any:
        """What stock Connexion builds for a request with this Content-Type: None when the
        operation has no body schema for it (or no validator for its media type)."""
        headers = [] if content_type is None else [(b"content-type", content_type)]
        mime_type, encoding = self.extract_content_type(headers)
        self.validate_mime_type(mime_type)
        operation = self._operation
        schema = operation.body_schema(mime_type)
        if not schema:
            return None
        validator = self._validator_map["body"].get(mime_type)
        if validator is None:
            return None
        return validator(
            schema=schema,
            required=operation.request_body.get("required", False),
            nullable=is_nullable(operation.body_definition(mime_type)),
            encoding=encoding,
            strict_validation=self.strict_validation,
            uri_parser=operation.uri_parser_class(
                operation.parameters, operation.body_definition()
            ),
        )


class PreparedValidationAPI(RequestValidationAPI):
    def make_operation(self, operation: AbstractOperation) -> RequestValidationOperation:
        return PreparedRequestValidation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class PreparedValidationMiddleware(PassThroughRouted, RequestValidationMiddleware):
    """Connexion's request validation middleware, making PreparedRequestValidation operations."""

    api_cls = PreparedValidationAPI
