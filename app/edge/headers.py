"""Headers every response gets at the edge, and redirects that never reflect the Host header."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Scope

# On every response: no MIME sniffing, never framed, no Referer sent onwards. (No CSP: the
# Swagger UI's page runs inline scripts, and JSON responses need none.)
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
# Responses carry tokens and per-user data: no cache may keep them, unless a response says
# otherwise itself (the public key set is cacheable).
NO_STORE = (b"cache-control", b"no-store")


def security_headers(message: Message) -> None:
    """Adds the security headers, and Cache-Control: no-store unless the response has its own,
    to an http.response.start message (each only once, if the message already has it)."""
    raw = message.get("headers")
    raw = message["headers"] = list(raw) if raw is not None else []
    present = {name.lower() for name, _ in raw}
    for name, value in SECURITY_HEADERS:
        if name not in present:
            raw.append((name, value))
    if NO_STORE[0] not in present:
        raw.append(NO_STORE)


def relative_location(message: Message, scope: Scope) -> None:
    """A redirect's Location without the scheme and authority Starlette builds from the Host
    header (its trailing-slash redirect answers `http://<Host>/path`): a hostile Host would
    send the caller elsewhere, and could poison a cache in front of us. Our redirects are
    always to our own paths, so a relative reference says the same."""
    if not 300 <= message["status"] < 400:
        return
    headers = MutableHeaders(scope=message)
    location = headers.get("location")
    if location is None:
        return
    scheme_end = location.find("://")
    if scheme_end == -1 or "/" in location[:scheme_end]:
        if location.startswith("//"):  # scheme-relative: still another authority
            headers["Location"] = "/" + location[2:].partition("/")[2]
        return
    authority_and_path = location[scheme_end + 3 :]
    host = _host_header(scope)
    if host is not None and authority_and_path.startswith(host):
        # Exactly what was sent as Host, even if it holds "/", "?" or "#".
        path = authority_and_path[len(host) :]
    else:
        path = "/" + authority_and_path.partition("/")[2]
    if not path.startswith("/") or path.startswith("//"):
        path = "/" + path.lstrip("/")
    headers["Location"] = path


def _host_header(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return bytes(value).decode("latin-1")
    return None
