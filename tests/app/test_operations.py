"""ArgumentPlan hands every handler exactly what Connexion's own parameter decorator would."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from connexion.context import _context, _operation
from connexion.decorators.parameter import AsyncParameterDecorator
from connexion.frameworks.starlette import Starlette
from connexion.lifecycle import ConnexionRequest
from connexion.operations import OpenAPIOperation
from connexion.spec import Specification

from app import adapter
from app.adapter.operations import PARSED_BODY_KEY, QUERY_KEY, RAW_BODY_KEY, ArgumentPlan
from app.adapter.resolver import TagResolver
from app.edge import spec

BIG = 12345678901234567890123  # beyond 64 bits: orjson would not keep it exact
DOCUMENT = b'{"name": "n", "big": %d}' % BIG


def spec_operations() -> Iterator[tuple[str, OpenAPIOperation]]:
    adapter.install()
    for document in spec.split(spec.load()):
        specification = Specification.from_dict(document)
        for path, item in specification["paths"].items():
            for method, definition in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    yield (
                        definition["operationId"],
                        OpenAPIOperation.from_spec(
                            specification, path=path, method=method, resolver=TagResolver()
                        ),
                    )


OPERATIONS = dict(spec_operations())


def sample(schema: dict[str, Any]) -> str:
    return "7" if schema.get("type") == "integer" else "sample-value"


def requests_for(op: OpenAPIOperation) -> Iterator[tuple[str, dict[str, Any], bytes | None, bool]]:
    """(label, query, body, body and query left by the validators) for each shape a request
    can have."""
    query = {p["name"]: sample(p.get("schema", {})) for p in op.parameters if p["in"] == "query"}
    queries = [{}, query] if query else [{}]
    bodies: list[bytes | None] = [None]
    if op.request_body:
        bodies = [DOCUMENT, b"", b"[1, 2]", b"null"]
    for q in queries:
        for body in bodies:
            for stashed in (True, False) if body or q else (False,):
                yield f"query={sorted(q)} body={body!r} stashed={stashed}", q, body, stashed


def request(
    op: OpenAPIOperation,
    path_params: dict[str, str],
    query: dict[str, str],
    body: bytes | None,
    stashed: bool,
) -> ConnexionRequest:
    scope: dict[str, Any] = {
        "type": "http",
        "method": op.method.upper(),
        "path": op.path,
        "query_string": "&".join(f"{k}={v}" for k, v in query.items()).encode(),
        "headers": [(b"content-type", b"application/json")] if body is not None else [],
        "path_params": path_params,
        "extensions": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body or b"", "more_body": False}

    parser = op.uri_parser_class(op.parameters, op.body_definition())
    if stashed:
        # What the validators leave: the body's bytes and the document parsed from them, and
        # the query as they resolved it.
        if body:
            scope["extensions"][RAW_BODY_KEY] = body
            scope["extensions"][PARSED_BODY_KEY] = json.loads(body)
        if query:
            resolved = ConnexionRequest(dict(scope), receive, uri_parser=parser).query_params
            scope["extensions"][QUERY_KEY] = resolved
    return ConnexionRequest(scope, receive, uri_parser=parser)


def capturing(handler: Callable[..., Any], into: dict[str, Any]) -> Callable[..., Any]:
    @functools.wraps(handler)  # Connexion and the plan both read the handler's signature
    async def capture(**kwargs: Any) -> None:
        into.update(kwargs)

    return capture


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
async def test_the_plan_gives_what_connexion_gives(operation_id: str) -> None:
    op = OPERATIONS[operation_id]
    plan = ArgumentPlan.build(op, op.function, pythonic=False)
    assert plan is not None, "every operation of ours is covered by the plan"
    _operation.set(op)
    _context.set({})
    path_params = {p["name"]: str(uuid.uuid4()) for p in op.parameters if p["in"] == "path"}
    for label, query, body, stashed in requests_for(op):
        stock: dict[str, Any] = {}
        decorated = AsyncParameterDecorator(framework=Starlette)(capturing(op.function, stock))
        await decorated(request(op, path_params, query, body, stashed))
        ready = plan.ready_arguments(request(op, path_params, query, body, stashed))
        planned = await plan.arguments(request(op, path_params, query, body, stashed))
        if ready is not None:  # made without awaiting anything: the same arguments
            assert ready == planned, label
        assert planned == stock, label
        assert [type(v) for v in planned.values()] == [type(v) for v in stock.values()], label
        if body == DOCUMENT:
            assert planned["body"] == {"name": "n", "big": BIG}, label


def test_handlers_that_want_more_keep_connexions_decorator() -> None:
    op = OPERATIONS["listProjects"]

    async def with_context(limit: int, cursor: str | None = None, user: str = "") -> None: ...

    async def with_kwargs(**kwargs: Any) -> None: ...

    def synchronous(limit: int, cursor: str | None = None) -> None: ...

    for handler in (with_context, with_kwargs, synchronous):
        assert ArgumentPlan.build(op, handler, pythonic=False) is None, handler.__name__
    assert ArgumentPlan.build(op, op.function, pythonic=False) is not None
