"""The scheduler in `sekisho serve`: ends grants at their end, wakes on events, recovers."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock, SystemClock
from sekisho.domain.access import Verb
from sekisho.providers.memory import MemoryProvider
from sekisho.services.lease import SCHEDULER, Leases
from sekisho.services.reconcile import ReconcileReport
from sekisho.services.scheduler import Scheduler
from sekisho.store.tables import GrantRow
from support import LEADER, MEMBER, draft


def grant_status(core: Core, grant_id: int) -> str:
    with core.db.read() as s:
        return s.get_one(GrantRow, grant_id).status


async def until(predicate, seconds: float = 10) -> None:  # type: ignore[no-untyped-def]
    """Give the scheduler's threads time to act; the clock itself never sleeps here."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("the scheduler did not act in time")
        await asyncio.sleep(0.01)


def test_a_grant_ends_when_the_clock_reaches_its_end(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    async def scenario() -> None:
        scheduler = core.new_scheduler()
        task = asyncio.create_task(scheduler.run())
        await until(lambda: scheduler.passes >= 1)
        request = await asyncio.to_thread(core.workflow.file, MEMBER, draft(duration="30m"))
        approved = await asyncio.to_thread(core.workflow.approve, LEADER, request.id, "ok")
        assert approved.grant is not None
        grant_id = approved.grant.id

        clock.advance(timedelta(minutes=29, seconds=59))
        await asyncio.sleep(0.1)
        assert grant_status(core, grant_id) == "active"  # one second early: untouched

        clock.advance(timedelta(seconds=1))
        await until(lambda: grant_status(core, grant_id) == "expired")
        assert provider.members("ProdMemberWorkGroup") == frozenset()
        assert provider.tags("member01") == {}
        scheduler.stop()
        await task

    asyncio.run(scenario())


def test_at_start_up_everything_past_its_end_is_ended_first(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    request = core.workflow.file(MEMBER, draft(duration="1h"))
    grant = core.workflow.approve(LEADER, request.id, "ok").grant
    assert grant is not None
    clock.advance(timedelta(hours=5))  # sekisho was down past the grant's end
    assert not core.authz.decide("member01", Verb.ASSUME, "prod/Prod_MemberRole").allowed

    async def scenario() -> None:
        scheduler = core.new_scheduler()
        task = asyncio.create_task(scheduler.run())
        await until(lambda: scheduler.passes >= 1)
        assert grant_status(core, grant.id) == "expired"
        assert "member01" not in provider.members("ProdMemberWorkGroup")
        scheduler.stop()
        await task

    asyncio.run(scenario())


def test_a_provider_outage_at_the_end_is_retried_until_confirmed(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    request = core.workflow.file(MEMBER, draft(duration="1h"))
    grant = core.workflow.approve(LEADER, request.id, "ok").grant
    assert grant is not None
    provider.fail("remove_member", times=2)

    async def scenario() -> None:
        scheduler = core.new_scheduler()
        task = asyncio.create_task(scheduler.run())
        clock.advance(timedelta(hours=1))
        await until(lambda: grant_status(core, grant.id) == "ending")
        assert not core.authz.decide("member01", Verb.ASSUME, "prod/Prod_MemberRole").allowed
        for _ in range(4):  # backoff: each retry is scheduled, and the clock moves past it
            clock.advance(timedelta(minutes=1))
            await asyncio.sleep(0.05)
        await until(lambda: grant_status(core, grant.id) == "expired")
        assert "member01" not in provider.members("ProdMemberWorkGroup")
        scheduler.stop()
        await task

    asyncio.run(scenario())


class SlowReconciler:
    """A reconcile against a big, slow IAM: it takes until the test lets it finish."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def run(self) -> ReconcileReport:
        self.started.set()
        if not self.release.wait(timeout=30):
            raise AssertionError("the test never let the reconcile finish")
        return ReconcileReport(dry_run=False)


def test_a_long_reconcile_holds_up_no_ending_and_no_lease_renewal(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    slow = SlowReconciler()
    request = core.workflow.file(MEMBER, draft(duration="30m"))
    grant = core.workflow.approve(LEADER, request.id, "ok").grant
    assert grant is not None

    async def scenario() -> None:
        scheduler = Scheduler(
            sweeper=core.sweeper,
            reconciler=slow,  # the twin, in place of the real reconciler
            checkpoints=core.audit_checkpoints,
            models=core.models,
            leases=Leases(core.db, clock),
            clock=clock,
            bus=core.bus,
            db=core.db,
        )
        task = asyncio.create_task(scheduler.run())
        await until(slow.started.is_set)  # the start-up reconcile is under way ...
        clock.advance(timedelta(minutes=30))
        await until(lambda: grant_status(core, grant.id) == "expired")  # ... and ends go on
        clock.advance(timedelta(seconds=14))  # past a renewal, within the lease
        await asyncio.sleep(0.1)
        clock.advance(timedelta(seconds=14))  # the first lease would have run out by now
        await asyncio.sleep(0.1)
        assert not core.new_leases().acquire(SCHEDULER, timedelta(seconds=15))  # still renewed
        slow.release.set()
        scheduler.stop()
        await task

    asyncio.run(scenario())
    assert "member01" not in provider.members("ProdMemberWorkGroup")


@pytest.mark.realtime
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_on_the_wall_clock_the_end_is_kept_to_the_second(core: Core) -> None:
    core.clock = SystemClock()

    async def scenario() -> float:
        scheduler = core.new_scheduler()
        task = asyncio.create_task(scheduler.run())
        request = await asyncio.to_thread(core.workflow.file, MEMBER, draft(duration="2s"))
        approved = await asyncio.to_thread(core.workflow.approve, LEADER, request.id, "ok")
        assert approved.grant is not None
        end = approved.grant.end_at
        await until(lambda: grant_status(core, approved.grant.id) == "expired", seconds=30)  # type: ignore[union-attr]
        lag = (datetime.now(UTC) - end).total_seconds()
        scheduler.stop()
        await task
        return lag

    lag = asyncio.run(scenario())
    # Deadline-driven, not a cron beat: ended within seconds of the end, not minutes.
    assert lag < 5, f"ended {lag:.2f}s after its end"


def test_with_two_nodes_only_the_lease_holder_sweeps_and_the_other_takes_over(
    core: Core, clock: ManualClock
) -> None:
    async def scenario() -> None:
        first = core.new_scheduler(core.new_leases("node-a"))
        second = core.new_scheduler(core.new_leases("node-b"))
        task_a = asyncio.create_task(first.run())
        await until(lambda: first.passes >= 1)
        task_b = asyncio.create_task(second.run())
        await asyncio.sleep(0.2)
        assert first.holding
        assert not second.holding
        assert second.passes == 0

        first.stop()  # node A shuts down and hands the lease back
        await task_a
        clock.advance(timedelta(seconds=6))  # node B looks again at its next renewal
        await until(lambda: second.holding and second.passes >= 1)
        second.stop()
        await task_b

    asyncio.run(scenario())


def test_a_dead_holder_loses_the_lease_when_it_runs_out(core: Core, clock: ManualClock) -> None:
    dead = core.new_leases("node-dead")
    alive = core.new_leases("node-alive")
    assert dead.acquire(SCHEDULER, timedelta(seconds=15))
    assert not alive.acquire(SCHEDULER, timedelta(seconds=15))
    clock.advance(timedelta(seconds=16))  # node-dead never renewed
    assert alive.acquire(SCHEDULER, timedelta(seconds=15))
    assert not dead.acquire(SCHEDULER, timedelta(seconds=15))
