"""Reachability of the shipped example: who reaches what standing, and what only by request."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from sekisho.domain.access import AccessModel, Verb
from sekisho.domain.access_decisions import decide_access
from sekisho.model import (
    Reach,
    load_file,
    load_text,
    people_reach,
    reachability,
    reachability_json,
    render_reachability,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jump-account.yaml"


@pytest.fixture(scope="module")
def example() -> AccessModel:
    return load_file(EXAMPLE)


@pytest.fixture(scope="module")
def reach(example: AccessModel) -> dict[str, Reach]:
    return {r.resource: r for r in reachability(example)}


def test_every_role_and_target_is_listed_in_file_order(example: AccessModel) -> None:
    listed = [(r.kind, r.resource) for r in reachability(example)]
    roles = [("role", role.ref) for role in example.roles()]
    targets = [("target", t.name) for t in example.targets]
    assert listed == roles + targets


def test_member01_cannot_reach_prod_member_role_standing(reach: dict[str, Reach]) -> None:
    prod_member = reach["prod/Prod_MemberRole"]
    assert prod_member.verb is Verb.ASSUME
    assert prod_member.account == "prod"
    assert prod_member.standing == ()
    assert "member01" not in prod_member.standing_users
    assert prod_member.only_through_request


def test_member01_may_request_prod_member_work_group_via_add_user_to_group(
    reach: dict[str, Reach],
) -> None:
    routes = reach["prod/Prod_MemberRole"].routes
    by_group = {(r.work_group, r.template): r for r in routes}
    assert set(by_group) == {("ProdMemberWorkGroup", "AddUserToGroup")}
    route = by_group["ProdMemberWorkGroup", "AddUserToGroup"]
    assert "member01" in route.requesters
    assert set(route.requester_groups) == {"MemberGroup", "LeaderGroup"}
    assert [(s.approvers, s.min_approvals) for s in route.approval] == [("ChangeApprovalGroup", 1)]
    assert not route.auto_approve


def test_only_leaders_may_request_the_prod_leader_role(reach: dict[str, Reach]) -> None:
    prod_leader = reach["prod/Prod_LeaderRole"]
    assert prod_leader.only_through_request
    assert prod_leader.requesters == ("leader01", "leader02")
    assert prod_leader.work_groups == ("ProdLeaderWorkGroup",)


def test_leader01_reaches_dev_leader_role_standing(reach: dict[str, Reach]) -> None:
    dev_leader = reach["dev/Dev_LeaderRole"]
    assert [(s.group, s.members) for s in dev_leader.standing] == [
        ("LeaderGroup", ("leader01", "leader02"))
    ]
    assert "leader01" in dev_leader.standing_users
    assert "member01" not in dev_leader.standing_users
    assert dev_leader.routes == ()
    assert not dev_leader.only_through_request


def test_prod_read_only_is_standing_for_leaders_and_members(reach: dict[str, Reach]) -> None:
    readonly = reach["prod/Prod_ReadOnlyRole"]
    assert {s.group for s in readonly.standing} == {"LeaderGroup", "MemberGroup"}
    assert not readonly.only_through_request


def test_production_targets_open_only_through_requests(reach: dict[str, Reach]) -> None:
    for name in ("prod-bastion", "prod-admin-console"):
        target = reach[name]
        assert target.verb is Verb.CONNECT
        assert target.only_through_request
        assert set(target.work_groups) == {"ProdLeaderWorkGroup", "ProdMemberWorkGroup"}
        assert target.unfillable_work_groups == ()


def test_nobody_reaches_anything_outside_the_model(example: AccessModel) -> None:
    # The jump account has no roles: nothing to list for it.
    assert all(r.account != "jump" or r.kind == "target" for r in reachability(example))


def test_reachability_agrees_with_the_access_decision(example: AccessModel) -> None:
    """Standing reach is exactly what `decide_access` allows with no grants; the requesters
    are exactly the people `decide_access` offers a route to."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for item in reachability(example):
        for user in example.users:
            decision = decide_access(example, user.name, item.verb, item.resource, [], at)
            assert decision.allowed == (user.name in item.standing_users), (item, user)
            if not decision.allowed:
                offered = {(r.template, r.group) for r in decision.routes}
                mine = {
                    (r.template, r.work_group) for r in item.routes if user.name in r.requesters
                }
                assert offered == mine, (item.resource, user.name)


def test_people_view_of_member01_and_leader01(example: AccessModel) -> None:
    people = {p.user: p for p in people_reach(example)}
    member = people["member01"]
    assert member.groups == ("MemberGroup",)
    assert "assume dev/Dev_MemberRole" in member.standing
    assert not any("Prod_MemberRole" in s for s in member.standing)
    assert [(r.template, r.work_group) for r in member.may_request] == [
        ("AddUserToGroup", "ProdMemberWorkGroup")
    ]
    assert member.may_request[0].reaches == (
        "assume prod/Prod_MemberRole",
        "connect prod-bastion",
        "connect prod-admin-console",
    )
    assert member.approves == ()
    leader = people["leader01"]
    assert "assume dev/Dev_LeaderRole" in leader.standing
    assert {r.work_group for r in leader.may_request} == {
        "ProdLeaderWorkGroup",
        "ProdMemberWorkGroup",
    }
    assert leader.approves == ("AddUserToGroup", "RemoveUserFromGroup")
    assert people["admin01"].admin
    assert people["auditor01"].audit
    assert not people["auditor01"].admin


def test_a_work_group_no_template_fills_is_shown() -> None:
    model = load_text(
        "version: 1\n"
        "targets: [{name: db, host: db.internal, port: 5432}]\n"
        "groups:\n"
        "  - {name: Orphan, kind: work, permissions: {connect: [db]}}\n"
    )
    (db,) = reachability(model)
    assert db.work_groups == ("Orphan",)
    assert db.unfillable_work_groups == ("Orphan",)
    assert not db.only_through_request  # nobody can get it at all
    data = reachability_json(model)
    assert data["resources"][0]["unfillable_work_groups"] == ["Orphan"]


def test_json_carries_the_same_facts(example: AccessModel) -> None:
    data = reachability_json(example)
    json.dumps(data)  # plain data only
    resources = {r["resource"]: r for r in data["resources"]}
    prod_member = resources["prod/Prod_MemberRole"]
    assert prod_member["kind"] == "role"
    assert prod_member["only_through_request"] is True
    assert prod_member["standing"] == []
    (route,) = prod_member["through_request"]
    assert route["template"] == "AddUserToGroup"
    assert route["work_group"] == "ProdMemberWorkGroup"
    assert "member01" in route["requesters"]
    assert route["approval"] == [{"approvers": "ChangeApprovalGroup", "min_approvals": 1}]
    assert route["max_duration"] == "8h"
    assert resources["dev/Dev_LeaderRole"]["standing"] == [
        {"group": "LeaderGroup", "members": ["leader01", "leader02"]}
    ]
    people = {p["user"]: p for p in data["people"]}
    assert people["member01"]["may_request"][0]["work_group"] == "ProdMemberWorkGroup"
    assert "assume dev/Dev_LeaderRole" in people["leader01"]["standing"]


def test_render_shows_both_tables(example: AccessModel) -> None:
    console = Console(width=200, record=True, color_system=None)
    console.print(render_reachability(example))
    text = console.export_text()
    assert "Who reaches what" in text
    assert "By person" in text
    lines = text.splitlines()
    (member_row,) = [
        n for n, line in enumerate(lines) if line.lstrip().startswith("prod/Prod_MemberRole")
    ]
    # The row says it is request-only and names the work group, the template and the approvers.
    row = "\n".join(lines[member_row : member_row + 3])
    assert "request only" in row
    assert "ProdMemberWorkGroup via AddUserToGroup" in row
    assert "approved by 1 of ChangeApprovalGroup" in row
    (dev_row,) = [
        n for n, line in enumerate(lines) if line.lstrip().startswith("dev/Dev_LeaderRole")
    ]
    assert "LeaderGroup: leader01, leader02" in lines[dev_row]
