"""Facts about the request being handled that handlers record: client address, user agent."""

from __future__ import annotations

import ipaddress

from connexion import request


def client_ip() -> str | None:
    client = request.client
    if client is None:
        return None
    try:
        return str(ipaddress.ip_address(client.host))
    except ValueError:  # e.g. test clients that are not on a network
        return None


def user_agent() -> str | None:
    agent = request.headers.get("user-agent")
    return agent[:512] if agent else None


def header(name: str) -> str | None:
    """A request header's value (the spec's parameter validation has checked it)."""
    return request.headers.get(name)
