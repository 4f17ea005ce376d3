"""argon2id password hashing, off the event loop, with a dummy hash for timing parity."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.config import PasswordHashing

# Each hash holds 19 MiB while it runs, and glibc keeps a thread's freed blocks in that
# thread's arena: on asyncio's default executor (up to 32 threads) a burst of logins left a
# worker at ~240 MB RSS. A few dedicated threads bound both the memory and the CPU that
# hashing can take from the event loop; more concurrent logins queue.
HASH_THREADS = max(1, min(4, os.cpu_count() or 1))
# glibc's mallopt: blocks from this size up are mapped for themselves and unmapped when freed.
M_MMAP_THRESHOLD = -3
LARGE_BLOCK_BYTES = 1 << 20
T = TypeVar("T")


def return_large_blocks_to_the_system() -> None:
    """Even on those threads, glibc raises its mmap threshold (up to 32 MiB) once a large
    block is freed, so every later 19 MiB hash buffer came from the thread's arena and stayed
    resident: +38 MB per worker after a few logins on two threads. A fixed threshold maps
    each buffer and gives it back when the hash ends. Process-wide, and only where the C
    library is glibc (elsewhere nothing changes)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES)
    except (OSError, AttributeError):  # not glibc: its own allocator policy stays
        return


class Passwords:
    """Hashes and verifies passwords at the configured cost; one per application."""

    def __init__(self, cost: PasswordHashing) -> None:
        self.hasher = PasswordHasher(
            time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism
        )

    @cached_property
    def _executor(self) -> ThreadPoolExecutor:
        return_large_blocks_to_the_system()
        return ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="argon2")

    async def _off_loop(self, work: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    @cached_property
    def dummy_hash(self) -> str:
        return self.hasher.hash("not a real password: equalises login timing")

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        return await self._off_loop(self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """False for a wrong password, and also for no user (after the same amount of work)."""
        if stored is None:
            await self._off_loop(self._verify, self.dummy_hash, password)
            return False
        return await self._off_loop(self._verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def warm_up(self) -> None:
        """Compute the dummy hash at start-up so the first unknown-email login is not slower."""
        _ = self.dummy_hash

    def close(self) -> None:
        """Stop the hashing threads; a later call starts new ones."""
        executor = self.__dict__.pop("_executor", None)
        if executor is not None:
            executor.shutdown(wait=False)
