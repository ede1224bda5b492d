"""The scheduler signs the audit trail's head: at start-up, after N entries, every period;
only on the node holding its lease."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from test_scheduler import until

from sekisho.clock import ManualClock
from sekisho.domain.access import Verb
from sekisho.services.audit_anchor import read_anchor
from sekisho.services.core import Core
from sekisho.services.scheduler import RENEW_EVERY
from support import AUDITOR, LEADER


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
        return [(c.seq, c.node) for c in read_anchor(anchor)] if anchor.exists() else []

    def head() -> int:
        return core.audit_trail.verify(AUDITOR).head_seq

    async def scenario() -> None:
        holder = core.new_scheduler(core.new_leases("node-a"))
        other = core.new_scheduler(core.new_leases("node-b"))
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
