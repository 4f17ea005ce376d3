"""Password hashing runs on a few dedicated threads, never on the event loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest
from argon2 import PasswordHasher

from app.auth import passwords
from app.config import PasswordHashing, Settings


def test_concurrent_hashing_uses_at_most_the_dedicated_threads() -> None:
    seen: set[str] = set()

    class Recording(PasswordHasher):
        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            seen.add(threading.current_thread().name)
            return super().hash(password, salt=salt)

    hashing = passwords.Passwords(PasswordHashing(time_cost=1, memory_kib=1024))
    hashing.hasher = Recording(time_cost=1, memory_cost=1024, parallelism=1)

    async def burst() -> list[str]:
        loop_thread = threading.current_thread().name
        hashes = await asyncio.gather(*(hashing.hash(f"pw-{i}") for i in range(12)))
        assert loop_thread not in seen
        return hashes

    hashes = asyncio.run(burst())
    assert len(set(hashes)) == 12
    assert all(hashing.hasher.verify(h, f"pw-{i}") for i, h in enumerate(hashes))
    assert seen
    assert all(name.startswith("argon2") for name in seen)
    assert len(seen) <= passwords.HASH_THREADS


def test_production_hashes_use_owasp_argon2id_parameters() -> None:
    # The tests' servers hash cheaply; what production runs with is the default, and the
    # environment cannot lower it.
    settings = Settings.from_env({"PASSWORD_HASH_MEMORY_KIB": "8", "ARGON2_TIME_COST": "1"})
    stored = asyncio.run(passwords.Passwords(settings.password_hashing).hash("pw"))
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), stored


RSS_AFTER_LOGINS = """
import asyncio, sys
from app.auth.passwords import Passwords
from app.config import PasswordHashing

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

async def main():
    passwords = Passwords(PasswordHashing())  # production cost: 19 MiB per hash
    stored = await passwords.hash("correct horse battery staple")
    before = rss_mib()
    for _ in range(3):
        await asyncio.gather(*(passwords.verify(stored, "x" * 12) for _ in range(4)))
    print(rss_mib() - before)

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, Linux only")
def test_hash_buffers_go_back_to_the_system_after_logins() -> None:
    # In a fresh process: two or more hash threads would each keep a 19 MiB buffer resident
    # after a burst of logins (+38 MB measured) if the allocator kept them.
    done = subprocess.run(
        [sys.executable, "-c", RSS_AFTER_LOGINS], capture_output=True, text=True, check=True
    )
    grown_mib = float(done.stdout.strip())
    assert grown_mib < 10, f"RSS grew {grown_mib:.1f} MiB over 12 logins"
