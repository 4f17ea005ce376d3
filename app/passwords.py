"""argon2id password hashing, off the event loop, with a dummy hash for timing parity."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# Each hash holds 19 MiB while it runs, and glibc keeps a thread's freed blocks in that
# thread's arena: on asyncio's default executor (up to 32 threads) a burst of logins left a
# worker at ~240 MB RSS. A few dedicated threads bound both the memory and the CPU that
# hashing can take from the event loop; more concurrent logins queue.
HASH_THREADS = max(1, min(4, os.cpu_count() or 1))
T = TypeVar("T")


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="argon2")


async def _off_loop(work: Callable[..., T], *args: str) -> T:
    return await asyncio.get_running_loop().run_in_executor(_executor(), work, *args)


@cache
def _dummy_hash() -> str:
    return HASHER.hash("not a real password: equalises login timing")


def _verify(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    return await _off_loop(HASHER.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """False for a wrong password, and also for no user (after the same amount of work)."""
    if stored is None:
        await _off_loop(_verify, _dummy_hash(), password)
        return False
    return await _off_loop(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    try:
        return HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def warm_up() -> None:
    """Compute the dummy hash at start-up so the first unknown-email login is not slower."""
    _dummy_hash()
