"""Facts about the request being handled that handlers record: client address, user agent."""

from __future__ import annotations

import ipaddress
from typing import Any

from connexion import request


def peer_address(client: Any) -> str | None:
    """The IP address of a connection's peer (Starlette's `Address`), if it is one."""
    if client is None:
        return None
    try:
        return str(ipaddress.ip_address(client.host))
    except ValueError:  # e.g. test clients that are not on a network
        return None


def client_ip() -> str | None:
    return peer_address(request.client)


def user_agent() -> str | None:
    agent = request.headers.get("user-agent")
    return agent[:512] if agent else None
