"""Ending a grant early: the holder releases, an admin revokes, a remove request is approved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from flows import (
    WORK,
    actions,
    at_once,
    audit_rows,
    can_assume,
    file,
    grant_row,
    granted,
    invalid,
    kinds,
    refused,
    remove_draft,
)

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Conflict, Forbidden, NotFound, SelfApproval
from sekisho.domain.grants import GrantStatus
from sekisho.domain.requests import RequestStatus
from sekisho.providers.memory import MemoryProvider
from support import ADMIN, AUDITOR, LEADER, LEADER2, MEMBER, MEMBER2

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def active_grant(core: Core) -> int:
    done = granted(core)
    assert done.grant is not None
    return done.grant.id


# -- release ----------------------------------------------------------------------------------


def test_holder_releases_their_grant(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    grant_id = active_grant(core)
    clock.advance(timedelta(minutes=20))
    released = core.grants.release(MEMBER, grant_id)
    assert (released.status, released.active, released.end_reason) == (
        "revoked",
        False,
        "released",
    )
    assert released.ended_by == "member01"
    assert released.ended_at == NOW + timedelta(minutes=20)
    assert not can_assume(core)
    assert provider.members(WORK) == frozenset()
    assert provider.tags("member01") == {}
    entry = audit_rows(core)[-1]
    assert (entry.action, entry.actor, entry.grant_id) == ("grant.revoked", "member01", grant_id)
    assert "released" in entry.detail["reason"]
    # Nothing is left for the sweeper.
    clock.set(NOW + timedelta(hours=3))
    assert not core.sweeper.run_due().anything


def test_only_the_holder_may_release(core: Core) -> None:
    grant_id = active_grant(core)
    with refused(core, NotFound):
        core.grants.release(MEMBER2, grant_id)
    with refused(core, Forbidden, match="admins revoke"):
        core.grants.release(ADMIN, grant_id)
    with refused(core, NotFound):
        core.grants.release(LEADER, grant_id)
    assert can_assume(core)


def test_releasing_twice_is_a_conflict(core: Core, clock: ManualClock) -> None:
    grant_id = active_grant(core)
    core.grants.release(MEMBER, grant_id)
    with refused(core, Conflict):
        core.grants.release(MEMBER, grant_id)


def test_releasing_an_ended_grant_is_a_conflict(core: Core, clock: ManualClock) -> None:
    grant_id = active_grant(core)
    clock.set(NOW + timedelta(hours=2))  # past its end, before any sweep
    with refused(core, Conflict):
        core.grants.release(MEMBER, grant_id)


def test_a_release_racing_a_revoke_is_a_conflict_never_a_silent_success(core: Core) -> None:
    """The holder releases while an admin revokes. One of them ends the grant; the other is
    told it is no longer active. (Checked in one transaction and ended in another, both said
    done, and the holder heard "released" of a grant the admin had revoked.)"""
    for _ in range(5):
        grant_id = active_grant(core)
        release, revoke = at_once(
            partial(core.grants.release, MEMBER, grant_id),
            partial(core.grants.revoke, ADMIN, grant_id, "incident 42"),
        )
        winner = "released" if release is None else "revoked"
        assert [type(e) for e in (release, revoke) if e is not None] == [Conflict]
        assert "not active" in str(release or revoke)
        row = grant_row(core, grant_id)
        assert (row.status, row.end_reason) == (GrantStatus.REVOKED, winner)
        assert actions(core, row.request_id).count("grant.revoked") == 1


# -- revoke -----------------------------------------------------------------------------------


def test_admin_revokes_with_a_reason(core: Core, provider: MemoryProvider) -> None:
    grant_id = active_grant(core)
    revoked = core.grants.revoke(ADMIN, grant_id, "incident 42: freeze all production access")
    assert (revoked.status, revoked.end_reason, revoked.ended_by) == (
        "revoked",
        "revoked",
        "admin01",
    )
    assert revoked.end_note == "incident 42: freeze all production access"
    assert not can_assume(core)
    assert provider.members(WORK) == frozenset()
    entry = audit_rows(core)[-1]
    assert (entry.action, entry.actor, entry.source) == ("grant.revoked", "admin01", ADMIN.source)
    assert "incident 42" in entry.detail["reason"]
    timeline = core.workflow.get(MEMBER, revoked.request_id).timeline
    assert "incident 42" in next(t.message for t in timeline if t.kind == "grant.ending")


@pytest.mark.parametrize("who", [MEMBER, LEADER, AUDITOR, MEMBER2], ids=lambda a: a.name)
def test_only_admins_revoke(core: Core, who: Actor) -> None:
    grant_id = active_grant(core)
    with refused(core, Forbidden, match="only admins"):
        core.grants.revoke(who, grant_id, "I want to")
    assert can_assume(core)


@pytest.mark.parametrize("reason", ["", "   "])
def test_revoke_needs_a_reason(core: Core, reason: str) -> None:
    grant_id = active_grant(core)
    with invalid(core, "reason", "required"):
        core.grants.revoke(ADMIN, grant_id, reason)
    assert can_assume(core)


def test_revoke_of_an_unknown_grant(core: Core) -> None:
    with refused(core, NotFound):
        core.grants.revoke(ADMIN, 999, "no such grant")


# -- a remove request -------------------------------------------------------------------------


def test_remove_request_ends_the_grants(core: Core, provider: MemoryProvider) -> None:
    first = granted(core, duration="2h")
    second = granted(core, duration="4h", approver=LEADER2)
    remove = core.workflow.file(MEMBER, remove_draft())
    assert (remove.status, remove.end_at, remove.template) == (
        "pending_approval",
        None,
        "RemoveUserFromGroup",
    )
    assert can_assume(core)  # until approved

    done = core.workflow.approve(LEADER, remove.id, "confirmed finished")
    assert done.status == RequestStatus.SUCCEEDED
    assert "removed member01 from ProdMemberWorkGroup (2 grant(s))" in done.timeline[-1].message
    assert "step:remove_user_from_group" in kinds(done)
    for request in (first, second):
        assert request.grant is not None
        row = grant_row(core, request.grant.id)
        assert (row.status, row.end_reason) == (GrantStatus.REVOKED, "removed")
        assert f"#{remove.id}" in (row.end_note or "")
    assert not can_assume(core)
    assert provider.members(WORK) == frozenset()
    assert provider.tags("member01") == {}
    assert actions(core, remove.id)[-1] == "request.succeeded"


def test_remove_request_needs_approval_like_any_other(core: Core) -> None:
    granted(core)
    remove = core.workflow.file(MEMBER, remove_draft())
    with refused(core, SelfApproval):
        core.workflow.approve(MEMBER, remove.id, "")
    rejected = core.workflow.reject(LEADER, remove.id, "keep it, the work is not done")
    assert rejected.status == RequestStatus.REJECTED
    assert can_assume(core)


def test_remove_with_no_active_grant_is_refused(core: Core, clock: ManualClock) -> None:
    with invalid(core, "group", "no_active_grant"):
        core.workflow.file(MEMBER, remove_draft())
    granted(core)
    clock.set(NOW + timedelta(hours=2))  # ended, though not yet swept
    with invalid(core, "group", "no_active_grant"):
        core.workflow.file(MEMBER, remove_draft())


@pytest.mark.parametrize(
    ("given", "field"),
    [({"until": "202611292000"}, "until"), ({"duration": "1h"}, "for"), ({"start": "1h"}, "start")],
)
def test_remove_request_takes_no_window(core: Core, given: dict[str, str], field: str) -> None:
    granted(core)
    with invalid(core, field, "not_applicable"):
        core.workflow.file(MEMBER, remove_draft(**given))


def test_remove_with_a_failing_provider_ends_access_and_retries(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    grant_id = active_grant(core)
    remove = core.workflow.file(MEMBER, remove_draft())
    provider.fail("remove_member")
    done = core.workflow.approve(LEADER, remove.id, "ok")
    assert done.status == RequestStatus.FAILED
    assert "retried" in done.timeline[-1].message
    assert not can_assume(core)
    assert grant_row(core, grant_id).status == GrantStatus.ENDING
    clock.advance(core.settings.end_retry_first)
    assert core.sweeper.run_due().retried == [grant_id]
    row = grant_row(core, grant_id)
    assert (row.status, row.end_reason) == (GrantStatus.REVOKED, "removed")
    assert provider.members(WORK) == frozenset()


def test_admin_files_a_remove_for_someone(core: Core) -> None:
    granted(core)
    remove = core.workflow.file(ADMIN, remove_draft(user="member01"))
    done = core.workflow.approve(LEADER, remove.id, "off-boarding")
    assert done.status == RequestStatus.SUCCEEDED
    assert not can_assume(core)
    assert file(core).status == RequestStatus.PENDING_APPROVAL  # they may ask again
