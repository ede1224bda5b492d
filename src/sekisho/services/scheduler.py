"""The expiry scheduler inside `sekisho serve`: a sweep at every deadline, to the second.

It sleeps until the earliest deadline (a grant's end, a request's decision deadline, a
scheduled start, a retry) and wakes early whenever an event says something changed, so a new
grant ending in 30 seconds is ended in 30 seconds, not on a cron beat.

When several nodes share PostgreSQL, only the holder of the scheduler lease sweeps; the others
wait and take over within one lease period if the holder stops renewing.

The scheduler decides only *when*: what a pass does is the sweeper's, a reconcile the
reconciler's, a checkpoint the audit checkpoints'. It writes nothing itself (no timeline,
audit or bus): each of those records its own changes.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from sekisho.clock import Clock
from sekisho.ports import ModelSource
from sekisho.services.audit_checkpoints import CheckpointResult
from sekisho.services.events import EventBus, Wakeup
from sekisho.services.lease import SCHEDULER, Leases
from sekisho.services.reconcile import ReconcileReport
from sekisho.services.sweeper import SweepReport
from sekisho.store import outage
from sekisho.store.db import Database

log = structlog.get_logger(__name__)

ERROR_PAUSE = timedelta(seconds=1)
LEASE_TTL = timedelta(seconds=15)
RENEW_EVERY = LEASE_TTL / 3


class Sweeps(Protocol):
    def run_due(self) -> SweepReport: ...

    def next_deadline(self) -> datetime | None: ...


class Reconciles(Protocol):
    def run(self) -> ReconcileReport: ...


class Checkpoints(Protocol):
    def due(self) -> bool: ...

    def checkpoint(self) -> CheckpointResult: ...


class Scheduler:
    def __init__(
        self,
        *,
        sweeper: Sweeps,
        reconciler: Reconciles,
        checkpoints: Checkpoints,
        models: ModelSource,
        leases: Leases,
        clock: Clock,
        bus: EventBus,
        db: Database,  # whose outage a failed turn reports
    ) -> None:
        self._sweeper, self._reconciler, self._checkpoints = sweeper, reconciler, checkpoints
        self._models, self._leases = models, leases
        self._clock, self._bus, self._db = clock, bus, db
        self._wake = Wakeup()
        self._stopping = False
        self.holding = False
        self._renew_at = clock.now()
        self._reconcile_at = clock.now()  # once at start-up, then every reconcile_every
        # A reconcile reads every user at the provider (minutes for a big IAM): it runs
        # beside the loop, never in it, so endings and lease renewals keep their times.
        self._reconciling: asyncio.Future[None] | None = None
        self._checkpointing: asyncio.Future[None] | None = None  # beside the loop too
        self.passes = 0

    def stop(self) -> None:
        self._stopping = True
        self._wake()

    async def run(self) -> None:
        """Hold the lease; sweep at every deadline, first of all what is already past its end.

        Work a dead process left in flight (a runbook, a provider removal) is taken over when
        its own short lease runs out: no node can tell a dead runner from a slow one sooner.
        """
        clock = self._clock
        self._wake.bind()
        unsubscribe = self._bus.subscribe(self._wake)
        try:
            while not self._stopping:
                self._wake.event.clear()
                try:
                    deadline = await self._turn()
                except Exception as error:
                    outage.loop_failed(self._db, error, log, "sweep failed; retrying shortly")
                    deadline = clock.now() + ERROR_PAUSE
                await clock.wait_until(deadline, self._wake.event)
        finally:
            unsubscribe()
            for work in (self._reconciling, self._checkpointing):
                if work is not None and not work.done():
                    await asyncio.wait([work])  # a provider call, an export: not interrupted
            if self.holding:
                await asyncio.to_thread(self._leases.release, SCHEDULER)

    async def _turn(self) -> datetime:
        """Look at the deadlines; sweep only if something is due. Return when to look again.

        Woken by an event, this is a few indexed reads: a full pass runs only when a deadline
        has come, or when this node has just taken the lease (start-up, or a take-over).
        """
        clock = self._clock
        taken = False
        if not self.holding or clock.now() >= self._renew_at:
            held = await asyncio.to_thread(self._leases.acquire, SCHEDULER, LEASE_TTL)
            self._renew_at = clock.now() + RENEW_EVERY
            if not held:
                if self.holding:
                    log.warning("scheduler lease lost to another node")
                self.holding = False
                return self._renew_at
            if not self.holding:
                log.info("scheduler lease taken", holder=self._leases.holder)
                self.holding = taken = True
        deadline = await asyncio.to_thread(self._sweeper.next_deadline)
        if taken or (deadline is not None and deadline <= clock.now()):
            await asyncio.to_thread(self._pass)
            deadline = await asyncio.to_thread(self._sweeper.next_deadline)
        if clock.now() >= self._reconcile_at and (
            self._reconciling is None or self._reconciling.done()
        ):
            self._reconcile_at = clock.now() + self._models.model().provider.reconcile_every
            self._reconciling = asyncio.ensure_future(asyncio.to_thread(self._reconcile))
        await self._checkpoint_if_due()
        soonest = min(self._renew_at, self._reconcile_at)
        return min(deadline, soonest) if deadline else soonest

    async def _checkpoint_if_due(self) -> None:
        """Sign the audit trail's head when it is due (docs/audit.md). At most every lease
        renewal apart, so the `after N entries` rule holds within seconds."""
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        if await asyncio.to_thread(self._checkpoints.due):
            self._checkpointing = asyncio.ensure_future(asyncio.to_thread(self._checkpoint))

    def _checkpoint(self) -> None:
        try:
            result = self._checkpoints.checkpoint()
        except Exception:
            log.exception("audit checkpoint failed; the next one runs at its time")
            return
        if result.checkpoint is None:
            log.error(
                "audit trail does not match its last checkpoint: NOT signed",
                problems=result.problems,
            )
            return
        for failure in result.failed:
            log.error("audit checkpoint not exported", error=failure)
        log.info("audit checkpoint", seq=result.checkpoint.seq, to=result.exported)

    def _reconcile(self) -> None:
        """Compare the provider with the grants (drift, hand-made changes); log the outcome."""
        try:
            report = self._reconciler.run()
        except Exception:
            log.exception("reconcile failed; the next one runs at its time")
            return
        if not report.clean:
            log.info(
                "reconcile",
                fixed=len(report.done),
                failed=len(report.failed),
                unreadable=sorted(report.unreadable),
            )

    def _pass(self) -> None:
        report = self._sweeper.run_due()
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
