"""Kill the dispatcher mid-delivery, restart it: every message arrives exactly once.

The dispatcher is a real `sekisho notify dispatch` process on a SQLite file, sending to a real
webhook receiver that verifies signatures and keeps delivery keys. The receiver takes one
message and holds its answer; the process is killed (SIGKILL) while it waits, so that message
reached the receiver but was never recorded as delivered, and the messages after it were
claimed but never sent. A new dispatcher takes over once the dead one's lease runs out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from notify_support import channels_yaml, dispatch_process, granted, load, with_notifications
from receivers import HttpReceiver
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.store.tables import NotificationRow
from support import MEMBER

HOOK_ONLY = "    - {events: ['*'], channels: [hook]}\n"
CYCLES = 10  # filed, decided, activated, ended: 4 messages each
HOLD_AT = 17


@pytest.fixture
def clock() -> ManualClock:
    # The killed dispatcher runs on the wall clock: start this one at the wall clock too.
    return ManualClock(datetime.now(UTC) - timedelta(minutes=1))


def rows(core: Core) -> list[NotificationRow]:
    with core.db.read() as s:
        return list(s.scalars(select(NotificationRow).order_by(NotificationRow.id)))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_kill_the_dispatcher_mid_delivery_and_restart_it(
    core: Core, clock: ManualClock, webhook: HttpReceiver, tmp_path: Path
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook), HOOK_ONLY))
    for _ in range(CYCLES):
        approved = granted(core, MEMBER, duration="1h")
        core.grants.release(MEMBER, approved.grant.id)  # type: ignore[union-attr]
    keys = [r.key for r in rows(core)]
    assert len(keys) == 4 * CYCLES
    by_request: dict[int | None, list[str]] = {}
    for row in rows(core):
        by_request.setdefault(row.request_id, []).append(row.key)

    webhook.hold_at = HOLD_AT
    process = dispatch_process(core, tmp_path / "dispatcher")
    try:
        assert webhook.held.wait(60), "the dispatcher never reached the held message"
    finally:
        process.kill()  # mid-delivery: the receiver has message 17, the sender no answer
        _, errors = process.communicate(timeout=30)
    webhook.release.set()
    assert process.returncode == -9, errors.decode()

    left = rows(core)
    delivered = [r for r in left if r.status == "delivered"]
    stuck = [r for r in left if r.status == "pending"]
    assert len(delivered) < HOLD_AT <= len(webhook.accepted)
    held = webhook.order[HOLD_AT - 1]
    assert held in {r.key for r in stuck}  # it arrived; nobody recorded it
    leased = [r for r in stuck if r.lease_until is not None]  # claimed by the dead process
    assert held in {r.key for r in leased}
    # What was not claimed waits behind an earlier message of its request.
    assert all(
        any(e.request_id == r.request_id and e.id < r.id for e in stuck)
        for r in stuck
        if r.lease_until is None
    )

    restarted = core.new_dispatcher()
    early = restarted.run_pass()  # the dead one's lease still holds its messages ...
    assert not {r.id for r in leased} & set(early.delivered)
    for row in leased:  # ... and what comes after them in their request
        later = {r.id for r in stuck if r.request_id == row.request_id and r.id > row.id}
        assert not later & set(early.delivered)
    clock.advance(timedelta(minutes=5))  # past the lease (2 minutes)
    report = restarted.run_pass()
    assert sorted(early.delivered + report.delivered) == sorted(r.id for r in stuck)
    assert {r.status for r in rows(core)} == {"delivered"}

    # At the receiver: every key exactly once, each request's in the order written (filed,
    # decided, activated, ended); the resent ones it already had were acknowledged and
    # dropped by key.
    assert sorted(webhook.order) == sorted(keys)
    for request_keys in by_request.values():
        assert [k for k in webhook.order if k in request_keys] == request_keys
    assert webhook.rejected == []
    assert held in webhook.duplicates
    assert len(webhook.duplicates) == len(set(webhook.duplicates))
    assert set(webhook.duplicates) <= {r.key for r in stuck}
