"""The runbook: ordered, idempotent steps on the timeline; a failed step leaves no half-grant."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flows import (
    PROD_MEMBER_ROLE,
    WORK,
    actions,
    can_assume,
    file,
    grant_row,
    granted,
    kinds,
    request_row,
    set_request,
)

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.access import Verb
from sekisho.domain.grants import GrantStatus
from sekisho.domain.requests import RequestStatus
from sekisho.providers.memory import MemoryProvider
from support import LEADER, MEMBER, MEMBER2


class Crash(BaseException):
    """The process dies mid-step (not an error sekisho could handle)."""


def die_while_tagging(
    core: Core, provider: MemoryProvider, monkeypatch: pytest.MonkeyPatch, request_id: int
) -> None:
    """Approve; the process dies after adding the member, before tagging."""
    real_set_tag = provider.set_tag

    def die(*_: object) -> str:
        raise Crash

    monkeypatch.setattr(provider, "set_tag", die)
    with pytest.raises(Crash):
        core.workflow.approve(LEADER, request_id, "ok")
    monkeypatch.setattr(provider, "set_tag", real_set_tag)


def test_steps_run_in_order_with_status_and_output(core: Core, provider: MemoryProvider) -> None:
    done = granted(core)
    steps = [(t.kind, t.status, t.actor) for t in done.timeline if t.kind.startswith("step:")]
    assert steps == [
        ("step:add_user_to_group", "ok", "sekisho:runbook"),
        ("step:tag_user", "ok", "sekisho:runbook"),
    ]
    assert done.timeline[-2].message == (
        "tag_user: tagged member01 {ProdMemberWorkGroup: 2026-11-29T11:00:00Z}"
    )
    assert provider.calls == [
        ("add_member", "member01", WORK),
        ("set_tag", "member01", WORK),
    ]


def test_steps_are_idempotent(core: Core, provider: MemoryProvider) -> None:
    """A member already in the group (drift, a retried run) does not make the run fail."""
    provider.add_member("member01", WORK)
    done = granted(core)
    assert done.status == RequestStatus.SUCCEEDED
    assert provider.members(WORK) == {"member01"}


@pytest.mark.parametrize("failing", ["add_member", "set_tag"])
def test_a_failed_step_fails_the_request_and_rolls_back(
    core: Core, provider: MemoryProvider, failing: str
) -> None:
    provider.fail(failing)
    done = granted(core)
    assert done.status == RequestStatus.FAILED
    assert done.grant is not None
    assert (done.grant.status, done.grant.active) == ("failed", False)

    # No half-grant: neither a membership nor a tag stays behind, and access is denied.
    assert provider.members(WORK) == frozenset()
    assert provider.tags("member01") == {}
    assert not can_assume(core)

    failed_steps = [t for t in done.timeline if t.status == "failed" and t.kind.startswith("step")]
    assert len(failed_steps) == 1
    assert "backend unavailable" in failed_steps[0].message
    assert done.timeline[-1].kind == "failed"
    assert "rolled back" in done.timeline[-1].message
    assert "request.failed" in actions(core, done.id)
    assert "grant.activated" not in actions(core, done.id)


def test_a_failed_rollback_is_retried_until_the_provider_confirms(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    """Tagging fails, then removing the half-added member fails too: it must not stay."""
    provider.fail("set_tag")
    provider.fail("remove_member")
    done = granted(core)
    assert done.status == RequestStatus.FAILED
    assert not can_assume(core)
    assert "retried" in done.timeline[-1].message
    assert done.grant is not None
    grant = grant_row(core, done.grant.id)
    assert grant.status == GrantStatus.ENDING
    assert provider.members(WORK) == {"member01"}  # the provider still has it, for now
    assert "grant.end_failed" in actions(core, done.id)
    assert core.sweeper.next_deadline() == grant.retry_at

    assert grant.retry_at is not None
    clock.set(grant.retry_at)
    report = core.sweeper.run_due()
    assert report.retried == [grant.id]
    assert provider.members(WORK) == frozenset()
    assert grant_row(core, grant.id).status == GrantStatus.FAILED
    assert actions(core, done.id)[-1] == "grant.failed"
    assert core.workflow.get(MEMBER, done.id).status == RequestStatus.FAILED


def test_rollback_keeps_the_membership_an_overlapping_grant_needs(
    core: Core, provider: MemoryProvider
) -> None:
    first = granted(core, duration="4h")
    provider.fail("set_tag")
    second = granted(core, duration="6h", comment="extend")
    assert second.status == RequestStatus.FAILED
    assert provider.members(WORK) == {"member01"}
    assert first.grant is not None
    assert provider.tags("member01") == {WORK: "2026-11-29T13:00:00Z"}
    assert core.authz.decide("member01", Verb.ASSUME, PROD_MEMBER_ROLE).grant_id == first.grant.id


# -- a runner that dies ------------------------------------------------------------------------


def test_a_run_killed_mid_step_is_resumed_when_its_lease_runs_out(
    core: Core, clock: ManualClock, provider: MemoryProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = file(core)
    die_while_tagging(core, provider, monkeypatch, request.id)

    # The approval survived; the run is in flight; the half-added member gives no access.
    row = request_row(core, request.id)
    assert row.status == RequestStatus.IN_PROGRESS
    assert provider.members(WORK) == {"member01"}
    assert not can_assume(core)
    # Within the runner's lease nobody else takes it over ...
    assert core.sweeper.run_due().runbooks_run == []
    assert core.sweeper.next_deadline() == row.runner_until

    # ... and once the lease runs out (the process died), the sweeper resumes it.
    clock.set(row.runner_until)
    assert core.sweeper.run_due().runbooks_run == [request.id]
    done = core.workflow.get(MEMBER, request.id)
    assert done.status == RequestStatus.SUCCEEDED
    assert "runbook resumed" in [t.message for t in done.timeline]
    assert can_assume(core)
    assert provider.tags("member01") == {WORK: "2026-11-29T11:00:00Z"}
    assert actions(core, request.id).count("grant.activated") == 1


def test_a_run_resumed_after_its_end_is_rolled_back(
    core: Core, clock: ManualClock, provider: MemoryProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = file(core)
    die_while_tagging(core, provider, monkeypatch, request.id)

    end = core.workflow.get(MEMBER, request.id).end_at  # set when the run took the request
    assert end is not None
    clock.set(end + timedelta(minutes=1))
    core.sweeper.run_due()
    done = core.workflow.get(MEMBER, request.id)
    assert done.status == RequestStatus.FAILED
    assert done.grant is not None
    assert done.grant.status == "failed"
    assert provider.members(WORK) == frozenset()
    assert not can_assume(core)


def test_in_progress_request_whose_runner_vanished(
    core: Core, clock: ManualClock, provider: MemoryProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner took the request (in_progress, lease) and died before any step."""
    request = file(core)

    def die(*_: object) -> str:
        raise Crash

    monkeypatch.setattr(provider, "add_member", die)  # dies as its first step starts
    with pytest.raises(Crash):
        core.workflow.approve(LEADER, request.id, "ok")
    monkeypatch.undo()
    lease_end = clock.now() + timedelta(minutes=1)
    set_request(core, request.id, status=RequestStatus.IN_PROGRESS, runner_until=lease_end)
    assert core.sweeper.run_due().runbooks_run == []
    assert request_row(core, request.id).status == RequestStatus.IN_PROGRESS
    assert provider.calls == []

    clock.set(lease_end)
    assert core.sweeper.run_due().runbooks_run == [request.id]
    done = core.workflow.get(MEMBER, request.id)
    assert done.status == RequestStatus.SUCCEEDED
    assert can_assume(core)


def test_another_node_takes_over_when_the_lease_runs_out(
    core: Core, clock: ManualClock, provider: MemoryProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweeper (here or on another node) takes over exactly when the lease runs out."""
    request = file(core, MEMBER2)
    die_while_tagging(core, provider, monkeypatch, request.id)
    clock.advance(core.settings.runbook_lease)
    assert core.sweeper.run_due().runbooks_run == [request.id]
    assert core.workflow.get(MEMBER2, request.id).status == RequestStatus.SUCCEEDED
    assert kinds(core.workflow.get(MEMBER2, request.id)).count("runbook") == 2
