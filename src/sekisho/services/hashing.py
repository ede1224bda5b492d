"""Password hashes a few at a time, off the event loop and outside every transaction.

An Argon2id verify at RFC 9106 parameters takes ~64 MiB and a core for tens of milliseconds,
so a flood of sign-ins must not run them all at once. They queue here for a few worker
threads; a caller on the event loop waits without holding a thread of its own. Attempts from
an address the user signed in from recently have a lane of their own, so strangers' guesses
never queue the real user behind them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class HashQueue:
    def __init__(self, slots: int) -> None:
        self._open = ThreadPoolExecutor(slots, thread_name_prefix="sekisho-hash")
        self._trusted = ThreadPoolExecutor(1, thread_name_prefix="sekisho-hash-trusted")

    def run(self, work: Callable[[], T], trusted: bool = False) -> T:
        """`work()` in its turn; this thread waits for it (the CLI's and the tests' way)."""
        return self._lane(trusted).submit(work).result()

    async def run_async(self, work: Callable[[], T], trusted: bool = False) -> T:
        """`work()` in its turn; the coroutine waits, no thread does (cancelled: dropped)."""
        return await asyncio.wrap_future(self._lane(trusted).submit(work))

    def _lane(self, trusted: bool) -> ThreadPoolExecutor:
        return self._trusted if trusted else self._open
