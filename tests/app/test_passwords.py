"""Password hashing runs on a few dedicated threads, never on the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from app import passwords


def test_concurrent_hashing_uses_at_most_the_dedicated_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: set[str] = set()

    class Recording(PasswordHasher):
        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            seen.add(threading.current_thread().name)
            return super().hash(password, salt=salt)

    monkeypatch.setattr(
        passwords, "HASHER", Recording(time_cost=1, memory_cost=1024, parallelism=1)
    )

    async def burst() -> list[str]:
        loop_thread = threading.current_thread().name
        hashes = await asyncio.gather(*(passwords.hash_password(f"pw-{i}") for i in range(12)))
        assert loop_thread not in seen
        return hashes

    hashes = asyncio.run(burst())
    assert len(set(hashes)) == 12
    assert all(passwords.HASHER.verify(h, f"pw-{i}") for i, h in enumerate(hashes))
    assert seen
    assert all(name.startswith("argon2") for name in seen)
    assert len(seen) <= passwords.HASH_THREADS
