"""The one source of time, injected wherever time matters: expiry is tested without sleeping."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        """Return at `deadline` (None: never) or as soon as `wake` is set, whichever is first."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        timeout = None
        if deadline is not None:
            timeout = max(0.0, (deadline - self.now()).total_seconds())
        try:
            await asyncio.wait_for(wake.wait(), timeout)
        except TimeoutError:
            return


class ManualClock:
    """A clock that moves only when told to. Waiters wake when it passes their deadline."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()
        self._moved: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        return self.set(self.now() + delta)

    def set(self, at: datetime) -> datetime:
        with self._lock:
            if at < self._now:
                raise ValueError("a ManualClock does not go backwards")
            self._now = at
            waiters = list(self._moved)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)
        return at

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        moved = asyncio.Event()
        entry = (asyncio.get_running_loop(), moved)
        with self._lock:
            self._moved.append(entry)
        try:
            while True:
                moved.clear()  # before the check, so a move during the check is not lost
                if wake.is_set() or (deadline is not None and self.now() >= deadline):
                    return
                waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(moved.wait())]
                _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
        finally:
            with self._lock:
                self._moved.remove(entry)
