"""Password hashes a few at a time, off the event loop and outside every transaction.

An Argon2id verify at RFC 9106 parameters takes ~64 MiB and a core for tens of milliseconds,
so a flood of sign-ins must not run them all at once. They queue here for a few worker
threads; a caller on the event loop waits without holding a thread of its own. Attempts from
an address the user signed in from recently have a lane of their own, so strangers' guesses
never queue the real user behind them. `Passwords` makes and checks the hashes themselves.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

T = TypeVar("T")


class Passwords:
    """Password hashes (Argon2id; tests pass a cheap hasher): made at enrolment, checked at a
    sign-in with the same work whether or not anyone holds the name."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self._hasher = hasher
        # Verifying against this when the user is unknown keeps both refusals' work alike.
        self._dummy = hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored` (None: nobody's; checked against a dummy)."""
        try:
            matches = self._hasher.verify(stored or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matches and stored is not None


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
