"""The scheduler signs the audit trail's head: at start-up, after N entries, every period;
only on the node holding its lease.

The schedulers here reconcile with a twin that writes nothing: a real reconcile (at start-up
and every 15 minutes, as the period) audits its run beside the loop, and that entry could
land just after a checkpoint, which is not what these checks are about.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from test_scheduler import until

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.access import Verb
from sekisho.services.audit_anchor import read_anchor
from sekisho.services.lease import Leases
from sekisho.services.reconcile import ReconcileReport
from sekisho.services.scheduler import RENEW_EVERY, Scheduler
from support import AUDITOR, LEADER


class QuietReconciler:
    def run(self) -> ReconcileReport:
        return ReconcileReport(dry_run=False)


def scheduler_on(core: Core, node: str) -> Scheduler:
    return Scheduler(
        sweeper=core.sweeper,
        reconciler=QuietReconciler(),
        checkpoints=core.audit_checkpoints,
        models=core.models,
        leases=Leases(core.db, core.clock, node),
        clock=core.clock,
        bus=core.bus,
        db=core.db,
    )


def test_checkpoints_at_start_after_n_entries_and_every_period_on_the_lease_holder(
    core: Core, clock: ManualClock, tmp_path: Path
) -> None:
    anchor = tmp_path / "anchor.jsonl"
    core = replace(
        core,
        settings=core.settings.model_copy(
            update={"audit_anchor_file": anchor, "audit_checkpoint_entries": 5}
        ),
    )

    def lines() -> list[tuple[int, str]]:
        # Created by the first checkpoint's open, before its line is written.
        written = anchor.exists() and anchor.stat().st_size > 0
        return [(c.seq, c.node) for c in read_anchor(anchor)] if written else []

    def head() -> int:
        return core.audit_trail.verify(AUDITOR).head_seq

    async def scenario() -> None:
        holder, other = scheduler_on(core, "node-a"), scheduler_on(core, "node-b")
        tasks = [asyncio.create_task(s.run()) for s in (holder, other)]
        await until(lambda: holder.holding or other.holding)
        await until(lambda: len(lines()) == 1)  # at start-up
        for _ in range(5):
            await asyncio.to_thread(
                core.authz.check, LEADER, "leader01", Verb.ASSUME, "prod/Prod_LeaderRole"
            )
        clock.advance(RENEW_EVERY)  # the next turn: at most a lease renewal away
        await until(lambda: len(lines()) == 2)
        assert lines()[-1][0] == await asyncio.to_thread(head)
        clock.advance(core.settings.audit_checkpoint_every)  # a period later (the lease may
        await until(lambda: len(lines()) == 3)  # have moved meanwhile: either node signs)
        assert lines()[-1][0] == await asyncio.to_thread(head)
        await asyncio.sleep(0.2)
        assert len(lines()) == 3  # one checkpoint per period: never one per node
        assert not (holder.holding and other.holding)
        for s in (holder, other):
            s.stop()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
