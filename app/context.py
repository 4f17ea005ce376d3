"""Values that belong to the request being served, readable from any layer without passing them."""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar

# Set by the edge for each request; audit rows and problem bodies quote it.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# The connection peer's host of the request being handled, as the server got it (set by the
# adapter around each operation); audit rows record it, through client_ip().
client_host: ContextVar[str | None] = ContextVar("client_host", default=None)
# The Runtime of the application serving this request (app.runtime.current() reads it). Typed
# loosely here so that this module, which every layer may import, imports none of them.
runtime: ContextVar[object | None] = ContextVar("runtime", default=None)


def client_ip() -> str | None:
    """The request's client address, if its peer is an IP address (parsed only when asked:
    most requests record nothing)."""
    host = client_host.get()
    if host is None:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:  # e.g. test clients that are not on a network
        return None
