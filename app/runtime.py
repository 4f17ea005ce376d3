"""What the running process was started with: settings and signing keys."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.keys import KeySet
from app.pagination import CursorCodec
from app.ratelimit import RateLimiter


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    keys: KeySet
    cursors: CursorCodec
    limiter: RateLimiter


_current: Runtime | None = None


def set_current(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("the application has not started")
    return _current
