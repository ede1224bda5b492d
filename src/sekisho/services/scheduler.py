"""The expiry scheduler inside `sekisho serve`: a sweep at every deadline, to the second.

It sleeps until the earliest deadline (a grant's end, a request's decision deadline, a
scheduled start, a retry) and wakes early whenever an event says something changed, so a new
grant ending in 30 seconds is ended in 30 seconds, not on a cron beat.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from sekisho.services.events import Event

if TYPE_CHECKING:
    from sekisho.services.core import Core

log = structlog.get_logger(__name__)

ERROR_PAUSE = timedelta(seconds=1)


class Scheduler:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self.passes = 0

    def _on_event(self, _event: Event) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def stop(self) -> None:
        self._stopping = True
        self._on_event(Event("scheduler.stop", self._core.now()))

    async def run(self) -> None:
        """Recover, end everything already past its end, then follow the deadlines."""
        core = self._core
        self._loop = asyncio.get_running_loop()
        unsubscribe = core.bus.subscribe(self._on_event)
        try:
            await asyncio.to_thread(core.sweeper.recover)
            while not self._stopping:
                self._wake.clear()
                deadline = None
                try:
                    report = await asyncio.to_thread(core.sweeper.run_due)
                    self.passes += 1
                    if report.anything:
                        log.info(
                            "sweep",
                            expired=report.expired,
                            retried=report.retried,
                            failing=sorted(report.still_failing),
                            requests_expired=report.requests_expired,
                            runbooks=report.runbooks_run,
                        )
                    deadline = await asyncio.to_thread(core.sweeper.next_deadline)
                except Exception:
                    log.exception("sweep failed; retrying shortly")
                    deadline = core.now() + ERROR_PAUSE
                await core.clock.wait_until(deadline, self._wake)
        finally:
            unsubscribe()
