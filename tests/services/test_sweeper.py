"""The sweeper: requests nobody decides expire, and it always knows when it is next needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flows import EXAMPLE_TEXT, actions, file, granted, kinds, load_model, remove_draft

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.errors import AlreadyDecided
from sekisho.domain.requests import RequestStatus
from sekisho.providers.memory import MemoryProvider
from support import LEADER, MEMBER, MEMBER2

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def expires_at(core: Core, clock: ManualClock, request_id: int, at: datetime) -> None:
    """The request is still pending just before `at`, and expired_unapproved from `at`."""
    clock.set(at - timedelta(seconds=1))
    assert core.sweeper.run_due().requests_expired == []
    assert core.workflow.get(MEMBER, request_id).status == RequestStatus.PENDING_APPROVAL
    clock.set(at)
    assert core.sweeper.run_due().requests_expired == [request_id]
    expired = core.workflow.get(MEMBER, request_id)
    assert expired.status == RequestStatus.EXPIRED_UNAPPROVED
    assert expired.timeline[-1].kind == "expired"
    assert actions(core, request_id)[-1] == "request.expired"


def test_pending_request_expires_at_its_end(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    request = file(core, duration=None, until="2026-11-29T11:00:00Z")
    assert request.decide_by == NOW + timedelta(hours=2)
    expires_at(core, clock, request.id, NOW + timedelta(hours=2))
    with pytest.raises(AlreadyDecided):
        core.workflow.approve(LEADER, request.id, "sorry, late")
    assert provider.calls == []


def test_pending_request_expires_at_its_start(core: Core, clock: ManualClock) -> None:
    request = file(core, start="2026-11-29T12:00:00Z", duration="2h")
    expires_at(core, clock, request.id, datetime(2026, 11, 29, 12, 0, tzinfo=UTC))


def test_pending_request_expires_after_the_approval_timeout(core: Core, clock: ManualClock) -> None:
    load_model(core, EXAMPLE_TEXT.replace("approval_timeout: 3d", "approval_timeout: 30m"))
    request = file(core, duration="2h")
    assert request.decide_by == NOW + timedelta(minutes=30)
    expires_at(core, clock, request.id, NOW + timedelta(minutes=30))


def test_remove_request_expires_after_the_approval_timeout(core: Core, clock: ManualClock) -> None:
    """A remove request has no window of its own: only the model's timeout bounds the wait."""
    granted(core, duration="8h")
    request = core.workflow.file(MEMBER, remove_draft())
    assert request.decide_by == NOW + timedelta(days=3)
    # The member's grant ends by itself meanwhile; the remove request still expires on time.
    expires_at(core, clock, request.id, NOW + timedelta(days=3))


def test_next_deadline_is_the_earliest_thing_due(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    sweeper = core.sweeper
    assert sweeper.next_deadline() is None

    # A pending request: its decision deadline.
    first = file(core, duration=None, until="2026-11-29T12:00:00Z")
    assert sweeper.next_deadline() == NOW + timedelta(hours=3)

    # A scheduled start, earlier than that.
    later = file(core, MEMBER2, start="2026-11-29T10:00:00Z", duration="1h")
    assert sweeper.next_deadline() == NOW + timedelta(hours=1)
    core.workflow.approve(LEADER, later.id, "tonight")
    assert sweeper.next_deadline() == NOW + timedelta(hours=1)

    # An active grant's end, earlier still; the first request is no longer pending.
    core.workflow.cancel(MEMBER, first.id)
    granted(core, duration="30m")
    assert sweeper.next_deadline() == NOW + timedelta(minutes=30)

    # A removal the provider did not confirm: its retry.
    provider.fail("remove_member")
    clock.set(NOW + timedelta(minutes=30))
    sweeper.run_due()
    assert sweeper.next_deadline() == clock.now() + core.settings.end_retry_first

    clock.advance(core.settings.end_retry_first)
    sweeper.run_due()
    assert sweeper.next_deadline() == NOW + timedelta(hours=1)  # the scheduled start
    clock.set(NOW + timedelta(hours=1))
    assert sweeper.run_due().runbooks_run == [later.id]
    assert sweeper.next_deadline() == NOW + timedelta(hours=2)  # its grant's end
    clock.set(NOW + timedelta(hours=2))
    assert len(sweeper.run_due().expired) == 1
    assert sweeper.next_deadline() is None


def test_a_sweep_is_idempotent(core: Core, clock: ManualClock) -> None:
    request = granted(core)
    file(core, MEMBER2, duration=None, until="2026-11-29T10:00:00Z")
    clock.set(NOW + timedelta(hours=2))
    first = core.sweeper.run_due()
    assert first.expired
    assert first.requests_expired
    audit_before = actions(core)
    timeline_before = kinds(core.workflow.get(MEMBER, request.id))
    assert not core.sweeper.run_due().anything
    assert actions(core) == audit_before
    assert kinds(core.workflow.get(MEMBER, request.id)) == timeline_before
