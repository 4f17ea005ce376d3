"""The request's client address as audit rows record it."""

from __future__ import annotations

import pytest

from app import context


@pytest.mark.parametrize(
    ("host", "recorded"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:DB8:0:0::1", "2001:db8::1"),  # one spelling per address
        ("testclient", None),  # not an IP address: nothing recorded
        (None, None),
    ],
)
def test_client_ip_is_the_normalized_peer_address(host: str | None, recorded: str | None) -> None:
    token = context.client_host.set(host)
    try:
        # Asked twice: the second answer comes from the memo and must be the same.
        assert context.client_ip() == recorded
        assert context.client_ip() == recorded
    finally:
        context.client_host.reset(token)
