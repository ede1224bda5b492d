"""May USER assume ROLE / connect TARGET now? Deny by default, say why, audit every denial."""

from __future__ import annotations

import pytest
from flows import PROD_MEMBER_ROLE, actions, audit_rows, granted, refused

from sekisho.bootstrap import Core
from sekisho.domain.access import Verb
from sekisho.domain.access_decisions import AccessRoute
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Forbidden
from support import ADMIN, AUDITOR, LEADER, MEMBER, MEMBER2


def test_standing_access_through_a_standing_group(core: Core) -> None:
    decision = core.authz.check(MEMBER, "member01", Verb.ASSUME, "dev/Dev_MemberRole")
    assert decision.allowed
    assert decision.standing
    assert decision.group == "MemberGroup"
    assert decision.grant_id is None
    assert "standing member of MemberGroup" in decision.reason
    assert "authz.denied" not in actions(core)  # allowed decisions are not noise in the trail


def test_standing_access_stops_at_the_role_the_group_names(core: Core) -> None:
    assert core.authz.check(LEADER, "leader01", Verb.ASSUME, "dev/Dev_LeaderRole").allowed
    assert not core.authz.check(MEMBER, "member01", Verb.ASSUME, "dev/Dev_LeaderRole").allowed
    assert core.authz.check(MEMBER, "member01", Verb.ASSUME, "prod/Prod_ReadOnlyRole").allowed


def test_denial_names_the_route_to_access(core: Core) -> None:
    decision = core.authz.check(MEMBER, "member01", Verb.ASSUME, PROD_MEMBER_ROLE)
    assert not decision.allowed
    assert decision.routes == (AccessRoute("AddUserToGroup", "ProdMemberWorkGroup"),)
    assert "AddUserToGroup for ProdMemberWorkGroup" in decision.reason
    # A leader may request either work group that opens the console.
    console = core.authz.check(LEADER, "leader01", Verb.CONNECT, "prod-admin-console")
    assert set(console.routes) == {
        AccessRoute("AddUserToGroup", "ProdLeaderWorkGroup"),
        AccessRoute("AddUserToGroup", "ProdMemberWorkGroup"),
    }


def test_denial_without_any_route(core: Core) -> None:
    """member01 may not request the leader work group: no route is offered."""
    decision = core.authz.check(MEMBER, "member01", Verb.ASSUME, "prod/Prod_LeaderRole")
    assert not decision.allowed
    assert decision.routes == ()
    assert "no template" in decision.reason
    decision = core.authz.check(AUDITOR, "auditor01", Verb.ASSUME, PROD_MEMBER_ROLE)
    assert not decision.allowed
    assert decision.routes == ()


@pytest.mark.parametrize(
    ("verb", "obj", "reason"),
    [
        (Verb.ASSUME, "prod/NoSuchRole", "unknown role 'prod/NoSuchRole'"),
        (Verb.ASSUME, "nowhere/Prod_MemberRole", "unknown role"),
        (Verb.CONNECT, "db-primary", "unknown target 'db-primary'"),
        (Verb.CONNECT, "prod/Prod_MemberRole", "unknown target"),
    ],
)
def test_unknown_roles_and_targets_are_denied(
    core: Core, verb: Verb, obj: str, reason: str
) -> None:
    decision = core.authz.check(MEMBER, "member01", verb, obj)
    assert not decision.allowed
    assert reason in decision.reason
    entry = audit_rows(core)[-1]
    assert (entry.action, entry.object, entry.detail["verb"]) == ("authz.denied", obj, verb.value)


def test_unknown_user_is_denied(core: Core) -> None:
    decision = core.authz.check(AUDITOR, "ghost", Verb.ASSUME, "dev/Dev_MemberRole")
    assert not decision.allowed
    assert "unknown user" in decision.reason


def test_a_grant_allows_and_the_decision_names_it(core: Core) -> None:
    done = granted(core)
    assert done.grant is not None
    for verb, obj in (
        (Verb.ASSUME, PROD_MEMBER_ROLE),
        (Verb.CONNECT, "prod-admin-console"),
        (Verb.CONNECT, "prod-bastion"),
    ):
        decision = core.authz.check(MEMBER, "member01", verb, obj)
        assert decision.allowed
        assert (decision.grant_id, decision.group, decision.standing) == (
            done.grant.id,
            "ProdMemberWorkGroup",
            False,
        )
    # The member work group does not open the leader role.
    assert not core.authz.check(MEMBER, "member01", Verb.ASSUME, "prod/Prod_LeaderRole").allowed
    # Nor does member01's grant help member02.
    assert not core.authz.check(MEMBER2, "member02", Verb.ASSUME, PROD_MEMBER_ROLE).allowed


def test_asking_about_someone_else_needs_audit_rights(core: Core) -> None:
    with refused(core, Forbidden, match="only about yourself"):
        core.authz.check(MEMBER2, "member01", Verb.ASSUME, PROD_MEMBER_ROLE)
    with refused(core, Forbidden):
        core.authz.check(LEADER, "member01", Verb.ASSUME, PROD_MEMBER_ROLE)
    for asker in (AUDITOR, ADMIN, Actor.system("gateway")):
        decision = core.authz.check(asker, "member01", Verb.ASSUME, "dev/Dev_MemberRole")
        assert decision.allowed
        assert decision.user == "member01"


def test_every_denial_is_audited(core: Core) -> None:
    asks = [
        (MEMBER, "member01", Verb.ASSUME, PROD_MEMBER_ROLE),
        (MEMBER, "member01", Verb.CONNECT, "prod-admin-console"),
        (AUDITOR, "member02", Verb.CONNECT, "prod-bastion"),
        (MEMBER, "member01", Verb.ASSUME, "dev/Dev_MemberRole"),  # allowed
        (LEADER, "leader01", Verb.ASSUME, "prod/Prod_LeaderRole"),
    ]
    before = len(actions(core))
    results = [core.authz.check(*ask) for ask in asks]
    denials = [r for r in results if not r.allowed]
    assert len(denials) == 4
    entries = audit_rows(core)[before:]
    assert [(e.action, e.outcome) for e in entries] == [("authz.denied", "denied")] * 4
    assert [(e.actor, e.subject, e.object) for e in entries] == [
        ("member01", "member01", PROD_MEMBER_ROLE),
        ("member01", "member01", "prod-admin-console"),
        ("auditor01", "member02", "prod-bastion"),
        ("leader01", "leader01", "prod/Prod_LeaderRole"),
    ]
    assert entries[0].source == MEMBER.source
    assert entries[0].detail["reason"] == denials[0].reason


def test_decide_alone_records_nothing(core: Core) -> None:
    """The read-only form (pages that show what a user could reach) writes no audit entry."""
    before = len(actions(core))
    assert not core.authz.decide("member01", Verb.ASSUME, PROD_MEMBER_ROLE).allowed
    assert len(actions(core)) == before
