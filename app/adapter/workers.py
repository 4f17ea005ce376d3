"""uvicorn workers that each listen on their own SO_REUSEPORT socket, so the kernel spreads
connections across them instead of letting the first worker to wake accept a whole burst."""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn import Config
from uvicorn.supervisors import Multiprocess

log = logging.getLogger(__name__)


def reuse_port_supported(port: int) -> bool:
    # Linux balances SO_REUSEPORT listeners by connection hash; other systems do not.
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT") and port != 0


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound (not yet listening: the worker listens) with SO_REUSEPORT. Only sockets of the
    same user can join the group, so another account cannot take a share of the traffic."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class ReusePortMultiprocess(Multiprocess):
    """uvicorn's supervisor (signals, health checks, restarts), but every worker it starts,
    including replacements, gets a fresh socket of its own. uvicorn hands `self.sockets` to
    each worker it creates (0.54; pinned), so that attribute makes a new socket on every read."""

    def __init__(self, config: Config) -> None:
        self._host, self._port = config.host, config.port
        self._given: list[socket.socket] = []
        super().__init__(config, sockets=[])

    @property
    def sockets(self) -> list[socket.socket]:
        sock = listening_socket(self._host, self._port)
        # Kept open in the supervisor: the spawned worker fetches it after start.
        self._given.append(sock)
        return [sock]

    @sockets.setter
    def sockets(self, _value: Any) -> None:
        pass


def serve(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    max_header_bytes: int = 16_384,
) -> None:
    """Serve the application `factory` builds, with one socket per worker where it helps."""
    options: dict[str, Any] = dict(
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="auto",
        http="auto",
        proxy_headers=True,
        server_header=False,
        log_level=log_level,
        # Where uvicorn parses with h11 (no httptools), h11 refuses a request head that arrives
        # in pieces and is still incomplete past 16 KiB with a bare 400 the application never
        # sees: leave room for the header limit (a 431 problem from the edge) plus a long
        # request line. httptools sets no limit of its own.
        h11_max_incomplete_event_size=max_header_bytes + 16_384,
    )
    if workers > 1 and reuse_port_supported(port):
        log.info("serving on http://%s:%d, %d workers (SO_REUSEPORT)", host, port, workers)
        ReusePortMultiprocess(Config(factory, **options)).run()
    else:
        uvicorn.run(factory, **options)
