"""Values that belong to the request being served, readable from any layer without passing them."""

from __future__ import annotations

from contextvars import ContextVar

# Set by the edge for each request; audit rows and problem bodies quote it.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# The client address of the request being handled (set by the adapter around each operation
# from the connection's peer); audit rows record it.
client_ip: ContextVar[str | None] = ContextVar("client_ip", default=None)
# The Runtime of the application serving this request (app.runtime.current() reads it). Typed
# loosely here so that this module, which every layer may import, imports none of them.
runtime: ContextVar[object | None] = ContextVar("runtime", default=None)
