"""Locks, the kill switch: one act ends every path a lock covers, and refuses new ones with
its reason; its end or removal restores nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flows import WORK, actions, audit_rows, can_assume, file, grant_row, granted, invalid, refused
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.access import Verb
from sekisho.domain.actor import Actor
from sekisho.domain.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    Locked,
    NotFound,
)
from sekisho.domain.requests import RequestStatus
from sekisho.providers.memory import MemoryProvider
from sekisho.services.events import Event
from sekisho.store.tables import TokenRow
from support import ADMIN, AUDITOR, LEADER, MEMBER, MEMBER2, People, code_for

SECURITY = Actor("security01", "198.51.100.20")
STOLEN = "locked by security01: laptop stolen"
CONSOLE = "prod-admin-console"
LEADER_WORK = "ProdLeaderWorkGroup"


def two_grants(core: Core, clock: ManualClock) -> tuple[int, int]:
    """member01 holds two overlapping grants in the work group."""
    first = granted(core, duration="2h")
    clock.advance(timedelta(minutes=1))
    second = granted(core, duration="3h")
    assert first.grant is not None
    assert second.grant is not None
    return first.grant.id, second.grant.id


def connect(core: Core, user: str = "member01", target: str = CONSOLE) -> str | None:
    """None if allowed, else the decision's reason."""
    decision = core.authz.decide(user, Verb.CONNECT, target)
    return None if decision.allowed else decision.reason


# -- a user lock ------------------------------------------------------------------------------


def test_user_lock_ends_grants_logins_and_refuses_everything_with_its_reason(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    people = People(core)
    token = people.token("member01")
    first, second = two_grants(core, clock)
    heard: list[Event] = []
    core.bus.subscribe(heard.append)

    placed = core.locks.place(SECURITY, "user", "member01", "laptop stolen")

    assert placed.lock.message == STOLEN
    assert placed.lock.in_force
    assert sorted(placed.grants_ended) == [first, second]
    assert placed.errors == []
    for grant_id in (first, second):
        row = grant_row(core, grant_id)
        assert (row.status, row.end_reason, row.end_note) == ("revoked", "locked", STOLEN)
    assert provider.members(WORK) == frozenset()
    assert placed.tokens_revoked == 1
    with pytest.raises(AuthenticationFailed):
        core.identity.authenticate(token)
    # Every path says why.
    assert connect(core) == STOLEN
    assert core.authz.decide("member01", Verb.ASSUME, "dev/Dev_MemberRole").reason == STOLEN
    with pytest.raises(Locked, match=f"denied: {STOLEN}"):
        file(core)
    # The gateways hear the lock itself (and each grant's end) after the commit.
    lock_events = [e for e in heard if e.name == "lock.placed"]
    assert [(e.user, e.data["reason"]) for e in lock_events] == [("member01", STOLEN)]
    trail = actions(core)
    assert trail[trail.index("lock.placed") + 1 :].count("grant.revoked") == 2
    placed_entry = next(r for r in audit_rows(core) if r.action == "lock.placed")
    assert (placed_entry.actor, placed_entry.subject) == ("security01", "member01")
    assert placed_entry.detail["reason"] == "laptop stolen"


def test_a_locked_user_with_the_right_password_and_code_is_refused_with_the_reason(
    core: Core,
) -> None:
    people = People(core)
    password, secret = people.enroll("member01")
    core.locks.place(SECURITY, "user", "member01", "laptop stolen")
    with pytest.raises(Locked, match=f"denied: {STOLEN}"):
        core.identity.login("member01", password, code_for(core, secret), "test")
    refusal = audit_rows(core)[-1]
    assert (refusal.action, refusal.outcome, refusal.detail["reason"]) == (
        "auth.login_locked",
        "denied",
        STOLEN,
    )
    with core.db.read() as s:
        assert s.scalars(select(TokenRow).where(TokenRow.revoked_at.is_(None))).all() == []


def test_a_wrong_password_for_a_locked_user_learns_nothing_of_the_lock(core: Core) -> None:
    people = People(core)
    _password, secret = people.enroll("member01")
    core.locks.place(SECURITY, "user", "member01", "laptop stolen")
    with pytest.raises(AuthenticationFailed) as caught:
        core.identity.login("member01", "wrong", code_for(core, secret), "test")
    assert not isinstance(caught.value, Locked)
    assert "locked" not in caught.value.message


def test_a_locked_approver_may_not_decide(core: Core) -> None:
    filed = file(core)
    core.locks.place(SECURITY, "user", "leader01", "phished")
    with refused(core, Locked, match="locked by security01: phished"):
        core.workflow.approve(LEADER, filed.id, "ok")


def test_a_lock_closes_the_open_requests_it_covers_and_tells_their_approvers(
    core: Core,
) -> None:
    pending = file(core)
    other = file(core, MEMBER2)
    placed = core.locks.place(SECURITY, "user", "member01", "laptop stolen")
    assert placed.requests_closed == [pending.id]
    closed = core.workflow.get(ADMIN, pending.id)
    assert closed.status == RequestStatus.REJECTED
    assert closed.timeline[-1].kind == "locked"
    assert STOLEN in closed.timeline[-1].message
    assert core.workflow.get(ADMIN, other.id).status == RequestStatus.PENDING_APPROVAL
    assert "request.locked" in actions(core, pending.id)


def test_a_lock_placed_while_a_runbook_runs_keeps_its_grant_from_becoming_usable(
    core: Core, provider: MemoryProvider
) -> None:
    adding = provider.add_member

    def add_member_then_lock(user: str, group: str) -> str:
        done = adding(user, group)
        core.locks.place(SECURITY, "user", user, "laptop stolen")
        return done

    provider.add_member = add_member_then_lock  # type: ignore[method-assign]
    filed = file(core)
    view = core.workflow.approve(LEADER, filed.id, "ok")
    assert view.status == RequestStatus.FAILED
    assert view.grant is not None
    assert not view.grant.active
    assert any(STOLEN in t.message for t in view.timeline if t.kind == "failed")
    assert provider.members(WORK) == frozenset()


# -- targets, groups and roles ---------------------------------------------------------------


def test_target_lock_ends_every_grant_that_reaches_it_and_refuses_new_requests(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    member = granted(core)
    leader = granted(core, LEADER, approver=Actor("leader02", "x"), group=LEADER_WORK)
    assert member.grant is not None
    assert leader.grant is not None
    placed = core.locks.place(ADMIN, "target", CONSOLE, "console compromised")
    message = "locked by admin01: console compromised"
    assert sorted(placed.grants_ended) == sorted([member.grant.id, leader.grant.id])
    assert provider.members(WORK) == provider.members(LEADER_WORK) == frozenset()
    assert connect(core) == connect(core, "leader01") == message
    with refused(core, Locked, match=message):
        file(core)
    # What the target lock does not reach is not touched: standing roles still work.
    assert can_assume(core, "member01", "dev/Dev_MemberRole")


def test_group_lock_voids_a_standing_groups_permissions_only(core: Core) -> None:
    core.locks.place(SECURITY, "group", "MemberGroup", "members' SSO is suspect")
    reason = core.authz.decide("member01", Verb.ASSUME, "dev/Dev_MemberRole").reason
    assert reason == "locked by security01: members' SSO is suspect"
    assert can_assume(core, "leader01", "dev/Dev_ReadOnlyRole")  # through LeaderGroup


def test_role_lock_denies_everyone_that_role(core: Core) -> None:
    core.locks.place(SECURITY, "role", "dev/Dev_ReadOnlyRole", "role trust policy changed")
    for user in ("member01", "leader01"):
        decision = core.authz.decide(user, Verb.ASSUME, "dev/Dev_ReadOnlyRole")
        assert decision.reason == "locked by security01: role trust policy changed"
    assert can_assume(core, "member01", "dev/Dev_MemberRole")


# -- its end restores nothing ------------------------------------------------------------------


def test_a_lock_runs_out_and_removal_restores_nothing(core: Core, clock: ManualClock) -> None:
    done = granted(core)
    assert done.grant is not None
    placed = core.locks.place(SECURITY, "user", "member01", "laptop stolen", duration="1h")
    assert placed.lock.until == clock.now() + timedelta(hours=1)
    assert not can_assume(core, "member01", "dev/Dev_MemberRole")
    clock.advance(timedelta(hours=1))
    assert can_assume(core, "member01", "dev/Dev_MemberRole")  # standing access is back
    assert not can_assume(core)  # the grant is not: it ended
    assert grant_row(core, done.grant.id).status == "revoked"
    with refused(core, Conflict, match="ran out"):
        core.locks.remove(SECURITY, placed.lock.id)


def test_unlock_lifts_the_lock_once_and_is_audited(core: Core) -> None:
    placed = core.locks.place(SECURITY, "target", CONSOLE, "investigating")
    assert [v.id for v in core.locks.list_locks(AUDITOR)] == [placed.lock.id]
    assert placed.lock.allowed_actions == frozenset({"unlock"})
    removed = core.locks.remove(ADMIN, placed.lock.id)
    assert (removed.in_force, removed.removed_by) == (False, "admin01")
    assert core.locks.list_locks(AUDITOR) == []
    assert [v.id for v in core.locks.list_locks(AUDITOR, everything=True)] == [placed.lock.id]
    assert actions(core)[-1] == "lock.removed"
    with refused(core, Conflict, match="removed by admin01 already"):
        core.locks.remove(ADMIN, placed.lock.id)


def test_whoami_shows_the_locks_that_concern_the_user(core: Core) -> None:
    core.locks.place(SECURITY, "target", CONSOLE, "investigating")
    core.locks.place(SECURITY, "user", "member02", "left the company")
    shown = core.identity.describe(ADMIN, "member01")
    assert shown.locks == []  # member01's standing groups reach neither
    core.locks.place(SECURITY, "group", "MemberGroup", "suspect")
    assert [v.subject for v in core.identity.describe(ADMIN, "member01").locks] == ["MemberGroup"]
    assert [v.subject for v in core.identity.describe(ADMIN, "member02").locks] == [
        "member02",
        "MemberGroup",
    ]


# -- a provider that does not confirm ----------------------------------------------------------


def test_a_failing_provider_leaves_grants_ending_denied_and_reported(
    core: Core, provider: MemoryProvider
) -> None:
    done = granted(core)
    assert done.grant is not None
    provider.fail("remove_member", times=5)
    placed = core.locks.place(SECURITY, "user", "member01", "laptop stolen")
    assert placed.grants_pending == [done.grant.id]
    assert placed.grants_ended == []
    assert placed.errors
    assert "remove_member failed" in placed.errors[0]
    assert grant_row(core, done.grant.id).status == "ending"
    assert connect(core) == STOLEN


# -- bad input: a clear error, nothing changed -------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "subject", "rule"),
    [
        ("user", "nobody", "unknown_user"),
        ("target", "prod-db", "unknown_target"),
        ("group", "NoSuchGroup", "unknown_group"),
        ("role", "prod/NoSuchRole", "unknown_role"),
        ("group", "ChangeApprovalGroup", "covers_nothing"),
    ],
)
def test_a_lock_on_nothing_is_refused(core: Core, kind: str, subject: str, rule: str) -> None:
    with invalid(core, "subject", rule):
        core.locks.place(SECURITY, kind, subject, "why")


def test_a_lock_needs_a_kind_a_reason_and_a_future_end(core: Core, clock: ManualClock) -> None:
    with invalid(core, "kind", "unknown_kind"):
        core.locks.place(SECURITY, "laptop", "member01", "why")
    with invalid(core, "reason", "required"):
        core.locks.place(SECURITY, "user", "member01", "   ")
    with invalid(core, "until", "in_the_past"):
        core.locks.place(SECURITY, "user", "member01", "why", until="2026-11-29T08:00:00Z")
    with invalid(core, "duration", "one_of"):
        core.locks.place(
            SECURITY,
            "user",
            "member01",
            "why",
            until="2030-01-01T00:00:00Z",
            duration="1h",
        )
    with invalid(core, "reason", "no_control_characters"):
        core.locks.place(SECURITY, "user", "member01", "stolen\x1b[2J")


def test_only_those_with_the_lock_permission_may_lock_and_unlock(core: Core) -> None:
    with refused(core, Forbidden, match="lock permission"):
        core.locks.place(MEMBER, "user", "member02", "I do not like them")
    with refused(core, Forbidden, match="lock permission"):
        core.locks.place(AUDITOR, "user", "member02", "auditors read")
    placed = core.locks.place(SECURITY, "user", "member02", "left")
    with refused(core, Forbidden):
        core.locks.remove(MEMBER2, placed.lock.id)
    with refused(core, Forbidden):
        core.locks.list_locks(MEMBER)
    with refused(core, NotFound, match="no lock #999"):
        core.locks.remove(SECURITY, 999)
