"""Connexion, Starlette and uvicorn as this product uses them: every subclass, override and
private-attribute use of the three lives in this package, behind `install()` and `build_app()`.

What is changed, and why (instructions per request counted with `python -m bench instructions`;
the figures are each change's share of a license validation when it was kept):

- `openapi31`, request validation: jsonschema-rs (Rust) decides whether a parameter or body
  is valid and the Python `jsonschema` validator runs only to explain an invalid one (-11.4%
  of a validation: 1,990,516 -> 1,763,162 instructions, measured 2026-11-30); a body's
  messages read without Connexion's async generator (-1.5%); the handler gets the
  validator's parsed document, integers beyond 64 bits exact (-0.1%).
- `errors`: the exception middleware builds Starlette's request object only when something
  was raised (-0.9%).
- `openapi31`: OpenAPI 3.1 documents checked by openapi-spec-validator instead of Connexion's
  bundled 3.0 meta-schema, and JSON Schema 2020-12 validators compiled once per schema
  (needed: Connexion 3.3 validates with Draft 4, upstream issue #1396). Body validators start
  at the operation's `$ref` target and parameterless operations skip the parameter check when
  there is no query string (-4%).
- `operations`: each operation's handler chain and argument plan built once, not per request
  (-16% for the plan alone; stock Connexion also rebuilds the decorator chain and the URI
  parser on every call).
- `operations` too: the handler's request built over the scope and receive the operation is
  called with, not through werkzeug proxies of Connexion's context variables (-1.8% of a
  validation: 1,487,217 -> 1,461,104, in process on uvloop, measured 2026-11-30).
- `validation`: request validation with each operation's parameter validator built once and
  its body validator once per Content-Type value (bounded), where stock Connexion builds two
  URI parsers, both validators and a media-type table per request (-6.4% of a validation:
  1,730,076 -> 1,618,920 instructions); the handler's arguments read the query string the
  parameter validator resolved, not a second parse of it (-2.1% of a listProjects page,
  -4.5% of a deep page: 2,601,856 -> 2,485,917; all measured 2026-11-30).
- `passthrough`: Connexion's routed middlewares, security, context and lifespan layers as plain
  callables returning the next layer's awaitable where they only pass a request on, and each
  routed operation linked straight to the next (the look-ups made once per operation): with
  the edge's own pass-through layers, -3.7% of a getCurrentUser (1,332,930 -> 1,284,559
  instructions), -2.3% of a license validation (1,460,412 -> 1,426,175), -2.5% of a deep
  listProjects page (2,031,411 -> 1,981,663); in process on uvloop, measured 2026-11-30.
- `routing`: a table for fixed paths instead of Starlette's route-by-route scan (-8%).
- `app`: Connexion's spec/UI middleware is left out of the stack (it was stepped over for paths
  it could not serve, -6%): it served the spec with every `$ref` inlined, and Swagger UI 4,
  which cannot render 3.1. The edge serves both now (app.edge.docs).
- `bearer`: the bearer check reuses the token the edge limiter verified, and the signature
  inspection Connexion repeats twice per request is cached (-8% of a getCurrentUser:
  2,153,005 -> 1,981,696 instructions, measured 2026-11-30).
- `workers`: one SO_REUSEPORT socket per uvicorn worker (1,338 -> ~1,960 validations/s).
- `deferred`: the modules Connexion imports for features the server does not use (remote
  `$ref`s, spec templates, OAuth token-info calls, the test client) imported at their first
  use instead (~11 MB per worker: 91.6 -> 80.4 MB after create_app, measured 2026-11-30).
- here, `install()`: each operation's body definition remembered on Connexion's operation
  object, which re-derives it five times per request (-3.3% of a validation: 2,038,842 ->
  1,970,601 instructions, measured 2026-11-30); and the contract's check skipped while an
  application is built from the very bytes `serve` validated before starting its workers
  (`spec_checked_elsewhere`: the OpenAPI validator costs each worker ~15 MB of memory).
"""

from __future__ import annotations

# First, before Connexion is imported: it imports modules the server never uses.
from app.adapter import deferred  # noqa: F401

# isort: split

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import metadata
from typing import Any

from connexion.exceptions import InvalidSpecification
from connexion.operations import OpenAPIOperation
from connexion.spec import OpenAPISpecification

from app.adapter import openapi31
from app.adapter.app import App, build_app

# The versions this package was written and tested against: [lowest, first untested).
TESTED = {
    "connexion": ((3, 3), (3, 4)),
    "starlette": ((1, 10), (1, 11)),
    "uvicorn": ((0, 54), (0, 55)),
}


class UntestedFramework(RuntimeError):
    """An installed Connexion, Starlette or uvicorn is outside the range the adapter was tested
    with."""


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def check_versions() -> None:
    for package, (lowest, beyond) in TESTED.items():
        installed = metadata.version(package)
        if not lowest <= _release(installed)[:2] < beyond:
            raise UntestedFramework(
                f"{package} {installed} is installed, but app/adapter overrides its internals and"
                f" was tested with {package} >={'.'.join(map(str, lowest))},"
                f"<{'.'.join(map(str, beyond))}: install a tested version (pyproject.toml pins it)"
                " or re-test the adapter against this one."
            )


def install() -> None:
    """Check the framework versions, make Connexion accept OpenAPI 3.1 documents and remember
    operations' body definitions. Patches two classes of Connexion once per process; calling
    it again changes nothing."""
    check_versions()
    current = OpenAPISpecification._validate_spec.__func__
    if getattr(current, "coditect_31", False):
        return
    OpenAPIOperation.body_definition = _remembered(OpenAPIOperation.body_definition)

    def _validate_spec(cls: type, spec: dict[str, object]) -> None:
        if _checked_elsewhere.get():
            return
        if str(spec.get("openapi", "")).startswith("3.1."):
            openapi31.validate_spec(spec)
        else:
            current(cls, spec)

    _validate_spec.coditect_31 = True  # type: ignore[attr-defined]
    OpenAPISpecification._validate_spec = classmethod(_validate_spec)


# True while an application is built from a contract that was validated before (by the
# process that started this one): Connexion's check of each document is then skipped.
_checked_elsewhere: ContextVar[bool] = ContextVar("spec_checked_elsewhere", default=False)


@contextmanager
def spec_checked_elsewhere(checked: bool) -> Iterator[None]:
    token = _checked_elsewhere.set(checked)
    try:
        yield
    finally:
        _checked_elsewhere.reset(token)


class InvalidContract(ValueError):
    """A document is not a valid OpenAPI document."""


def validate_documents(*documents: dict[str, Any]) -> None:
    """Validate documents as Connexion does when an application adds them as APIs: `serve`
    does it once, before its workers start."""
    try:
        for document in documents:
            if str(document.get("openapi", "")).startswith("3.1."):
                openapi31.validate_spec(document)
            else:
                OpenAPISpecification._validate_spec(document)
    except InvalidSpecification as e:
        raise InvalidContract(str(e)) from None


def _remembered(body_definition: Any) -> Any:
    """The spec does not change and every caller only reads the answer, so each operation
    keeps the body definition it derived (a wildcard media-type lookup and a merged copy)."""

    def remembered(self: OpenAPIOperation, content_type: str | None = None) -> Any:
        known = self.__dict__.setdefault("_body_definitions", {})
        if content_type not in known:
            known[content_type] = body_definition(self, content_type)
        return known[content_type]

    return remembered


__all__ = [
    "TESTED",
    "App",
    "InvalidContract",
    "UntestedFramework",
    "build_app",
    "check_versions",
    "install",
    "spec_checked_elsewhere",
    "validate_documents",
]
