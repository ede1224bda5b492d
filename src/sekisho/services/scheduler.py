"""The expiry scheduler inside `sekisho serve`: a sweep at every deadline, to the second.

It sleeps until the earliest deadline (a grant's end, a request's decision deadline, a
scheduled start, a retry) and wakes early whenever an event says something changed, so a new
grant ending in 30 seconds is ended in 30 seconds, not on a cron beat.

When several nodes share PostgreSQL, only the holder of the scheduler lease sweeps; the others
wait and take over within one lease period if the holder stops renewing.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from sekisho.services.events import Event
from sekisho.services.lease import SCHEDULER, Leases

if TYPE_CHECKING:
    from sekisho.services.core import Core

log = structlog.get_logger(__name__)

ERROR_PAUSE = timedelta(seconds=1)
LEASE_TTL = timedelta(seconds=15)
RENEW_EVERY = LEASE_TTL / 3


class Scheduler:
    def __init__(self, core: Core, leases: Leases | None = None) -> None:
        self._core = core
        self._leases = leases or Leases(core)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self.holding = False
        self.passes = 0

    def _on_event(self, _event: Event) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def stop(self) -> None:
        self._stopping = True
        self._on_event(Event("scheduler.stop", self._core.now()))

    async def run(self) -> None:
        """Hold the lease; on taking it, recover and end everything already past its end."""
        core = self._core
        self._loop = asyncio.get_running_loop()
        unsubscribe = core.bus.subscribe(self._on_event)
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    deadline = await self._turn()
                except Exception:
                    log.exception("sweep failed; retrying shortly")
                    deadline = core.now() + ERROR_PAUSE
                await core.clock.wait_until(deadline, self._wake)
        finally:
            unsubscribe()
            if self.holding:
                await asyncio.to_thread(self._leases.release, SCHEDULER)

    async def _turn(self) -> datetime:
        """One pass if this node holds the lease; return when to look again."""
        core = self._core
        held = await asyncio.to_thread(self._leases.acquire, SCHEDULER, LEASE_TTL)
        renew_by = core.now() + RENEW_EVERY
        if not held:
            if self.holding:
                log.warning("scheduler lease lost to another node")
            self.holding = False
            return renew_by
        if not self.holding:
            log.info("scheduler lease taken", holder=self._leases.holder)
            self.holding = True
            await asyncio.to_thread(core.sweeper.recover)
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
        return min(deadline, renew_by) if deadline else renew_by
