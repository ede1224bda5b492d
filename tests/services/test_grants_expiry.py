"""Grants end on time, always: at their end, with a late sweeper, and when the provider fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flows import (
    PROD_MEMBER_ROLE,
    WORK,
    actions,
    audit_rows,
    can_assume,
    file,
    grant_row,
    granted,
    kinds,
)

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.access import Verb
from sekisho.domain.errors import Forbidden
from sekisho.domain.grants import GrantStatus
from sekisho.domain.requests import RequestStatus
from sekisho.providers.memory import MemoryProvider
from support import AUDITOR, LEADER, MEMBER, MEMBER2

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
END = NOW + timedelta(hours=2)


def test_access_stops_at_the_end_even_before_a_sweep(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    granted(core)
    clock.set(END - timedelta(microseconds=1))
    assert can_assume(core)
    clock.set(END)
    # The scheduler has not run (it is late, or down): access is over anyway.
    assert not can_assume(core)
    assert not core.authz.decide("member01", Verb.CONNECT, "prod-admin-console").allowed
    assert core.identity.whoami(MEMBER).grants == []
    assert core.grants.list_grants(MEMBER, active_only=True) == []
    assert provider.members(WORK) == {"member01"}  # only until the sweeper catches up


def test_a_late_sweeper_still_ends_the_grant(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    request = granted(core)
    assert request.grant is not None
    late = END + timedelta(hours=5)
    clock.set(late)
    report = core.sweeper.run_due()
    assert report.expired == [request.grant.id]
    ended = grant_row(core, request.grant.id)
    assert (ended.status, ended.end_reason, ended.ended_at) == ("expired", "expired", late)
    assert ended.end_at == END  # it says when access ended, and when the sweep confirmed
    assert provider.members(WORK) == frozenset()
    assert provider.tags("member01") == {}
    # One pass did everything: the next finds nothing.
    assert not core.sweeper.run_due().anything
    assert core.sweeper.next_deadline() is None


def test_grant_window_is_the_requested_one(core: Core) -> None:
    done = granted(core, duration="2h30m")
    assert done.grant is not None
    assert (done.grant.start_at, done.grant.end_at) == (NOW, NOW + timedelta(hours=2, minutes=30))
    assert done.grant.activated_at == NOW


# -- a start in the future ---------------------------------------------------------------------


@pytest.mark.parametrize("start", ["2026-11-29T10:00:00Z", "202611291900"])
def test_scheduled_start(
    core: Core, clock: ManualClock, provider: MemoryProvider, start: str
) -> None:
    later = NOW + timedelta(hours=1)
    request = file(core, start=start, duration="2h")
    assert (request.start_at, request.end_at) == (later, later + timedelta(hours=2))
    assert request.decide_by == later  # nobody deciding before the start: it expires

    approved = core.workflow.approve(LEADER, request.id, "for tonight")
    assert approved.status == RequestStatus.SCHEDULED
    assert approved.grant is None
    assert "runbook will run at 2026-11-29T10:00:00Z" in approved.timeline[-1].message
    assert provider.calls == []
    assert not can_assume(core)
    assert core.sweeper.next_deadline() == later

    clock.set(later - timedelta(seconds=1))
    assert core.sweeper.run_due().runbooks_run == []
    assert not can_assume(core)

    clock.set(later)
    assert core.sweeper.run_due().runbooks_run == [request.id]
    done = core.workflow.get(MEMBER, request.id)
    assert done.status == RequestStatus.SUCCEEDED
    assert done.grant is not None
    assert (done.grant.start_at, done.grant.end_at) == (later, later + timedelta(hours=2))
    assert can_assume(core)
    assert provider.tags("member01") == {WORK: "2026-11-29T12:00:00Z"}
    assert core.sweeper.next_deadline() == later + timedelta(hours=2)


def test_scheduled_run_that_comes_after_the_end_fails_cleanly(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    request = file(core, start="2026-11-29T10:00:00Z", duration="1h")
    core.workflow.approve(LEADER, request.id, "ok")
    clock.set(NOW + timedelta(hours=3))  # the scheduler was down through the whole window
    core.sweeper.run_due()
    done = core.workflow.get(MEMBER, request.id)
    assert done.status == RequestStatus.FAILED
    assert "end time passed" in done.timeline[-1].message
    assert provider.calls == []
    assert not can_assume(core)


@pytest.mark.parametrize("start", ["now", "2026-11-29T08:57:00Z"])
def test_a_start_that_is_already_here_means_now(core: Core, start: str) -> None:
    """A start of now (or a few minutes ago: clock skew, a slow form) behaves as no start."""
    if start == "now":
        start = "2026-11-29T09:00:00Z"
    request = file(core, start=start, duration="1h")
    assert request.start_at is None
    assert request.end_at is None  # a duration counts from the activation
    assert request.decide_by == NOW + timedelta(days=3)  # the model's approval timeout
    done = core.workflow.approve(LEADER, request.id, "ok")
    assert done.status == RequestStatus.SUCCEEDED
    assert done.grant is not None
    assert done.grant.end_at == NOW + timedelta(hours=1)


def test_a_duration_counts_from_the_approval_not_the_filing(core: Core, clock: ManualClock) -> None:
    request = file(core, duration="1h")
    clock.advance(timedelta(minutes=40))  # the approver was in a meeting
    done = core.workflow.approve(LEADER, request.id, "ok")
    assert done.grant is not None
    assert done.grant.start_at == NOW + timedelta(minutes=40)
    assert done.grant.end_at == NOW + timedelta(minutes=100)
    assert done.end_at == done.grant.end_at  # the request shows the end once it is known


# -- the provider fails at the end ------------------------------------------------------------


def test_failing_removal_keeps_the_grant_ending_and_is_retried(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    request = granted(core)
    assert request.grant is not None
    grant_id = request.grant.id
    provider.fail("remove_member", times=2)

    clock.set(END)
    report = core.sweeper.run_due()
    assert report.expired == []
    assert list(report.still_failing) == [grant_id]
    assert "backend unavailable" in report.still_failing[grant_id]

    # Access is over, but the grant is not called expired: the provider has not confirmed.
    row = grant_row(core, grant_id)
    assert (row.status, row.ended_at, row.end_attempts) == (GrantStatus.ENDING, None, 1)
    assert row.retry_at == END + core.settings.end_retry_first
    assert not can_assume(core)
    assert provider.members(WORK) == {"member01"}
    failed = [r for r in audit_rows(core, request.id) if r.action == "grant.end_failed"]
    assert len(failed) == 1
    assert (failed[0].outcome, failed[0].grant_id, failed[0].detail["attempts"]) == (
        "failed",
        grant_id,
        1,
    )
    assert "grant.expired" not in actions(core, request.id)
    assert core.sweeper.next_deadline() == row.retry_at

    # Before the backoff nothing is retried; then it fails again, and waits twice as long.
    clock.set(END + timedelta(seconds=1))
    assert not core.sweeper.run_due().anything
    clock.set(END + timedelta(seconds=2))
    assert list(core.sweeper.run_due().still_failing) == [grant_id]
    row = grant_row(core, grant_id)
    assert row.end_attempts == 2
    assert row.retry_at == END + timedelta(seconds=2 + 4)
    assert row.status == GrantStatus.ENDING

    clock.set(row.retry_at)
    report = core.sweeper.run_due()
    assert report.retried == [grant_id]
    row = grant_row(core, grant_id)
    assert (row.status, row.ended_at, row.last_error) == (
        GrantStatus.EXPIRED,
        END + timedelta(seconds=6),
        None,
    )
    assert provider.members(WORK) == frozenset()
    assert provider.tags("member01") == {}
    assert actions(core, request.id)[-3:] == [
        "grant.end_failed",
        "grant.end_failed",
        "grant.expired",
    ]
    timeline = core.workflow.get(MEMBER, request.id).timeline
    assert [t.status for t in timeline if t.kind == "step:remove_user_from_group"] == [
        "failed",
        "failed",
        "ok",
    ]
    assert kinds(core.workflow.get(MEMBER, request.id)).count("grant.ending") == 1


def test_failing_untag_is_retried_too(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    request = granted(core)
    assert request.grant is not None
    provider.fail("delete_tag")
    clock.set(END)
    assert list(core.sweeper.run_due().still_failing) == [request.grant.id]
    assert provider.members(WORK) == frozenset()
    assert provider.tags("member01") != {}
    assert grant_row(core, request.grant.id).status == GrantStatus.ENDING
    clock.advance(core.settings.end_retry_first)
    assert core.sweeper.run_due().retried == [request.grant.id]
    assert provider.tags("member01") == {}


class Crash(BaseException):
    """The process dies (not an error sekisho could handle)."""


def test_an_ending_interrupted_mid_flight_is_retried_after_a_short_lease(
    core: Core, clock: ManualClock, provider: MemoryProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process died while the provider removed the member: a restart picks it up."""
    request = granted(core)
    assert request.grant is not None

    def die(*_: object) -> str:
        raise Crash

    monkeypatch.setattr(provider, "remove_member", die)  # dies after access ended
    clock.set(END)
    with pytest.raises(Crash):
        core.sweeper.run_due()
    monkeypatch.undo()
    assert grant_row(core, request.grant.id).status == GrantStatus.ENDING
    assert not can_assume(core)
    retry = END + core.settings.ending_lease
    assert core.sweeper.next_deadline() == retry
    clock.set(retry)
    assert core.sweeper.run_due().retried == [request.grant.id]
    assert provider.members(WORK) == frozenset()


# -- listing grants ---------------------------------------------------------------------------


def test_listing_grants(core: Core, clock: ManualClock) -> None:
    mine = granted(core)
    theirs = granted(core, MEMBER2, duration="4h")
    assert mine.grant is not None
    assert theirs.grant is not None
    assert [g.id for g in core.grants.list_grants(MEMBER)] == [mine.grant.id]
    assert [g.id for g in core.grants.list_grants(AUDITOR)] == [theirs.grant.id, mine.grant.id]
    with pytest.raises(Forbidden):
        core.grants.list_grants(MEMBER, user="member02")
    clock.set(END)
    assert core.grants.list_grants(MEMBER, active_only=True) == []
    assert [g.id for g in core.grants.list_grants(AUDITOR, active_only=True)] == [theirs.grant.id]
    assert core.authz.decide("member02", Verb.ASSUME, PROD_MEMBER_ROLE).allowed


# -- subscribers (the gateway cuts sessions on grant.ended) -----------------------------------


def test_subscribers_hear_when_access_starts_and_ends(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    heard: list[tuple[str, int | None, str | None, str | None]] = []
    core.bus.subscribe(lambda e: heard.append((e.name, e.grant_id, e.user, e.group)))
    request = granted(core)
    assert request.grant is not None
    grant_id = request.grant.id
    assert ("grant.activated", grant_id, "member01", WORK) in heard

    # The end is announced when access ends, before the provider confirms (or even when it
    # fails), so live sessions are cut at once.
    provider.fail("remove_member")
    heard.clear()
    clock.set(END)
    core.sweeper.run_due()
    assert grant_row(core, grant_id).status == GrantStatus.ENDING
    assert heard == [("grant.ended", grant_id, "member01", WORK)]
    # A retry does not announce it again.
    clock.advance(core.settings.end_retry_first)
    core.sweeper.run_due()
    assert heard == [("grant.ended", grant_id, "member01", WORK)]


def test_a_broken_subscriber_does_not_stop_expiry(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    def broken(_event: object) -> None:
        raise RuntimeError("subscriber bug")

    heard: list[str] = []
    core.bus.subscribe(broken)
    core.bus.subscribe(lambda e: heard.append(e.name))
    request = granted(core)
    assert request.status == RequestStatus.SUCCEEDED
    clock.set(END)
    assert len(core.sweeper.run_due().expired) == 1
    assert provider.members(WORK) == frozenset()
    assert "grant.activated" in heard
    assert "grant.ended" in heard  # the others still hear everything
