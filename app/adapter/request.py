"""Facts about the request being handled that handlers record: client address, user agent."""

from __future__ import annotations

from connexion import request

from app import context


def client_ip() -> str | None:
    return context.client_ip()


def user_agent() -> str | None:
    agent = request.headers.get("user-agent")
    return agent[:512] if agent else None


def header(name: str) -> str | None:
    """A request header's value (the spec's parameter validation has checked it)."""
    return request.headers.get(name)
