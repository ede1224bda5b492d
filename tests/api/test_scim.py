"""SCIM 2.0 at /scim/v2, as an IdP drives it over HTTP: provisioning, the leaver path (a
deactivation or a deletion locks the person it names and ends what they hold), and every bad
input refused with its SCIM error and nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sekisho.bootstrap import Core
from sekisho.domain.access import Verb
from sekisho.domain.errors import Forbidden
from sekisho.model import check_text
from sekisho.store.tables import AuditRow, DirectoryGroupRow, DirectoryUserRow
from support import ADMIN, EXAMPLE_TEXT, LEADER, MEMBER, draft

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def okta(core: Core) -> dict[str, str]:
    return {"Authorization": f"Bearer {core.directory.tokens.issue(ADMIN, 'okta')}"}


def new_user(api: TestClient, idp: dict[str, str], name: str, **more: Any) -> dict[str, Any]:
    body = {"schemas": [USER_SCHEMA], "userName": name, "active": True, **more}
    answer = api.post("/scim/v2/Users", json=body, headers=idp)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def set_active(api: TestClient, idp: dict[str, str], user_id: str, active: bool) -> Any:
    body = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "value": {"active": active}}],
    }
    return api.patch(f"/scim/v2/Users/{user_id}", json=body, headers=idp)


def scim_error(answer: Any, status: int, scim_type: str | None = None) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/scim+json")
    body = answer.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    detail: str = body["detail"]
    return detail


def directory_rows(core: Core) -> int:
    with core.db.read() as s:
        users = s.scalar(select(func.count()).select_from(DirectoryUserRow)) or 0
        groups = s.scalar(select(func.count()).select_from(DirectoryGroupRow)) or 0
        return users + groups


def member_grant(core: Core) -> int:
    filed = core.workflow.file(MEMBER, draft())
    approved = core.workflow.approve(LEADER, filed.id, "ok, go ahead")
    assert approved.grant is not None
    assert approved.grant.status == "active"
    return approved.grant.id


# -- the token --------------------------------------------------------------------------------


def test_without_a_valid_token_nothing_is_read_or_written(
    api: TestClient, core: Core, okta: dict[str, str]
) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "someone@example.com"}
    for headers in ({}, {"Authorization": "Bearer sks_scim_wrong"}, {"Authorization": "Basic x"}):
        scim_error(api.post("/scim/v2/Users", json=body, headers=headers), 401)
        scim_error(api.get("/scim/v2/Users", headers=headers), 401)
        scim_error(api.get("/scim/v2/ServiceProviderConfig", headers=headers), 401)
    assert directory_rows(core) == 0


def test_a_new_token_retires_the_old_one_and_only_an_admin_issues_one(
    api: TestClient, core: Core, okta: dict[str, str]
) -> None:
    assert api.get("/scim/v2/Users", headers=okta).status_code == 200
    with pytest.raises(Forbidden):
        core.directory.tokens.issue(MEMBER, "okta")
    fresh = {"Authorization": f"Bearer {core.directory.tokens.issue(ADMIN, 'okta')}"}
    scim_error(api.get("/scim/v2/Users", headers=okta), 401)
    assert api.get("/scim/v2/Users", headers=fresh).status_code == 200
    with core.db.read() as s:
        issued = s.scalars(select(AuditRow.actor).where(AuditRow.action == "scim.token_issued"))
        assert list(issued) == ["admin01", "admin01"]


def test_a_token_of_another_idp_finds_nothing_of_this_ones(
    api: TestClient, core: Core, okta: dict[str, str]
) -> None:
    entra = {"Authorization": f"Bearer {core.directory.tokens.issue(ADMIN, 'entra')}"}
    user = new_user(api, okta, "member01@example.com")
    scim_error(api.get(f"/scim/v2/Users/{user['id']}", headers=entra), 404)
    scim_error(set_active(api, entra, user["id"], False), 404)
    scim_error(api.delete(f"/scim/v2/Users/{user['id']}", headers=entra), 404)
    assert api.get("/scim/v2/Users", headers=entra).json()["totalResults"] == 0
    assert api.get(f"/scim/v2/Users/{user['id']}", headers=okta).json()["active"] is True


# -- users --------------------------------------------------------------------------------------


def test_a_user_is_created_found_by_user_name_and_read_back_without_its_password(
    api: TestClient, core: Core, okta: dict[str, str]
) -> None:
    created = new_user(api, okta, "Bjensen@Example.com", password="t1meMa$heen")
    assert created["meta"]["resourceType"] == "User"
    assert created["meta"]["location"].endswith(f"/scim/v2/Users/{created['id']}")
    assert "password" not in created
    found = api.get(
        "/scim/v2/Users", params={"filter": 'userName eq "bjensen@example.com"'}, headers=okta
    ).json()
    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == created["id"]
    read = api.get(f"/scim/v2/Users/{created['id']}", headers=okta).json()
    assert read["userName"] == "Bjensen@Example.com"
    assert "password" not in read
    with core.db.read() as s:
        stored = s.get_one(DirectoryUserRow, created["id"]).resource
    assert "password" not in stored
    assert "t1meMa$heen" not in str(stored)


def test_pages_start_where_asked_and_hold_at_most_count(
    api: TestClient, okta: dict[str, str]
) -> None:
    ids = {new_user(api, okta, f"person{i}@example.com")["id"] for i in range(5)}
    everyone = api.get("/scim/v2/Users", headers=okta).json()["Resources"]
    assert {r["id"] for r in everyone} == ids
    page = api.get("/scim/v2/Users", params={"startIndex": 2, "count": 2}, headers=okta).json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert page["Resources"] == everyone[1:3]  # one order, page after page
    rest = api.get("/scim/v2/Users", params={"startIndex": 0, "count": -1}, headers=okta).json()
    assert (rest["startIndex"], rest["itemsPerPage"], rest["totalResults"]) == (1, 0, 5)


def test_a_body_that_breaks_the_schema_is_refused_with_its_scim_type(
    api: TestClient, core: Core, okta: dict[str, str]
) -> None:
    no_name = {"schemas": [USER_SCHEMA], "active": True}
    assert "userName" in scim_error(
        api.post("/scim/v2/Users", json=no_name, headers=okta), 400, "invalidValue"
    )
    wrong_type = {"schemas": [USER_SCHEMA], "userName": "x@example.com", "active": "maybe"}
    scim_error(api.post("/scim/v2/Users", json=wrong_type, headers=okta), 400, "invalidValue")
    not_json = api.post(
        "/scim/v2/Users", content=b"{not json", headers={**okta, "content-type": SCIM}
    )
    scim_error(not_json, 400, "invalidSyntax")
    bad_filter = api.get("/scim/v2/Users", params={"filter": "userName eq"}, headers=okta)
    scim_error(bad_filter, 400, "invalidFilter")
    long_filter = api.get("/scim/v2/Users", params={"filter": "x" * 1001}, headers=okta)
    scim_error(long_filter, 400, "invalidFilter")
    bad_page = api.get("/scim/v2/Users", params={"startIndex": "first"}, headers=okta)
    assert "startIndex must be an integer" in scim_error(bad_page, 400, "invalidValue")
    bad_attribute = api.get("/scim/v2/Users", params={"attributes": "no such"}, headers=okta)
    scim_error(bad_attribute, 400, "invalidPath")
    too_long = {"schemas": [USER_SCHEMA], "userName": "x" * 257 + "@example.com"}
    assert "longer than 256" in scim_error(
        api.post("/scim/v2/Users", json=too_long, headers=okta), 400, "invalidValue"
    )
    long_group = {"schemas": [GROUP_SCHEMA], "displayName": "g" * 257}
    scim_error(api.post("/scim/v2/Groups", json=long_group, headers=okta), 400, "invalidValue")
    user = new_user(api, okta, "member02@example.com")
    bad_patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "explode", "path": "active"}]}
    scim_error(
        api.patch(f"/scim/v2/Users/{user['id']}", json=bad_patch, headers=okta), 400, "invalidValue"
    )
    assert directory_rows(core) == 1


SCIM = "application/scim+json"


def test_a_user_renamed_onto_another_ones_name_is_refused_and_keeps_its_own(
    api: TestClient, okta: dict[str, str]
) -> None:
    new_user(api, okta, "member01@example.com")
    other = new_user(api, okta, "member02@example.com")
    rename = {"schemas": [USER_SCHEMA], "userName": "MEMBER01@example.com", "active": True}
    scim_error(
        api.put(f"/scim/v2/Users/{other['id']}", json=rename, headers=okta), 409, "uniqueness"
    )
    twice = {"schemas": [USER_SCHEMA], "userName": "member02@EXAMPLE.com"}
    scim_error(api.post("/scim/v2/Users", json=twice, headers=okta), 409, "uniqueness")
    assert api.get(f"/scim/v2/Users/{other['id']}", headers=okta).json()["userName"] == (
        "member02@example.com"
    )


# -- the leaver ---------------------------------------------------------------------------------


def test_deactivating_a_user_locks_the_person_and_ends_their_grant_until_reactivated(
    api: TestClient, core: Core, okta: dict[str, str]
) -> None:
    grant_id = member_grant(core)
    user = new_user(api, okta, "member01@example.com")  # names member01 by e-mail
    answer = set_active(api, okta, user["id"], False)
    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is False
    [lock] = core.locks.list_locks(ADMIN)
    assert (lock.subject, lock.created_by) == ("member01", "sekisho:scim:okta")
    assert "deactivated in the identity provider (okta, SCIM)" in lock.reason
    assert core.grants.get(ADMIN, grant_id).status in ("revoked", "ending")
    decision = core.authz.decide("member01", Verb.ASSUME, "prod/Prod_MemberRole")
    assert not decision.allowed
    assert "locked by sekisho:scim:okta" in decision.reason
    assert set_active(api, okta, user["id"], True).status_code == 200
    assert core.locks.list_locks(ADMIN) == []  # lifted; what ended stays ended
    assert core.grants.get(ADMIN, grant_id).status in ("revoked", "ending")
    with core.db.read() as s:
        actions = list(s.scalars(select(AuditRow.action).order_by(AuditRow.seq)))
    assert "scim.user_deactivated" in actions
    assert "lock.placed" in actions
    assert actions.index("scim.user_deactivated") < actions.index("lock.placed")
    assert "scim.user_reactivated" in actions
    assert "lock.removed" in actions


def test_deleting_a_user_locks_the_person_it_named(
    api: TestClient, core: Core, okta: dict[str, str]
) -> None:
    user = new_user(api, okta, "member01")
    assert api.delete(f"/scim/v2/Users/{user['id']}", headers=okta).status_code == 204
    scim_error(api.get(f"/scim/v2/Users/{user['id']}", headers=okta), 404)
    [lock] = core.locks.list_locks(ADMIN)
    assert lock.subject == "member01"
    assert "deleted in the identity provider" in lock.reason


def test_a_directory_user_the_model_does_not_know_is_kept_and_locks_nobody(
    api: TestClient, core: Core, okta: dict[str, str]
) -> None:
    user = new_user(api, okta, "contractor@elsewhere.example")
    assert set_active(api, okta, user["id"], False).status_code == 200
    assert core.locks.list_locks(ADMIN) == []


# -- groups -------------------------------------------------------------------------------------


def test_groups_hold_this_idps_users_and_refuse_strangers_and_twins(
    api: TestClient, core: Core, okta: dict[str, str]
) -> None:
    member = new_user(api, okta, "member01@example.com")
    body = {"schemas": [GROUP_SCHEMA], "displayName": "prod-approvers"}
    created = api.post("/scim/v2/Groups", json=body, headers=okta)
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]
    add = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": member["id"]}]}],
    }
    patched = api.patch(f"/scim/v2/Groups/{group_id}", json=add, headers=okta)
    assert patched.status_code == 200, patched.text
    assert [m["value"] for m in patched.json()["members"]] == [member["id"]]
    stranger = {**body, "displayName": "other", "members": [{"value": "no-such-user"}]}
    scim_error(api.post("/scim/v2/Groups", json=stranger, headers=okta), 400, "invalidValue")
    twin = {**body, "displayName": "PROD-approvers"}
    scim_error(api.post("/scim/v2/Groups", json=twin, headers=okta), 409, "uniqueness")
    found = api.get(
        "/scim/v2/Groups", params={"filter": 'displayName eq "prod-approvers"'}, headers=okta
    ).json()
    assert [g["id"] for g in found["Resources"]] == [group_id]
    assert api.delete(f"/scim/v2/Groups/{group_id}", headers=okta).status_code == 204
    assert directory_rows(core) == 1  # the user


def test_discovery_says_what_this_service_supports(api: TestClient, okta: dict[str, str]) -> None:
    config = api.get("/scim/v2/ServiceProviderConfig", headers=okta).json()
    assert config["patch"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["filter"] == {"supported": True, "maxResults": 200}
    types = api.get("/scim/v2/ResourceTypes", headers=okta).json()
    assert {t["endpoint"] for t in types["Resources"]} == {"/Users", "/Groups"}
    assert api.get("/scim/v2/ResourceTypes/User", headers=okta).json()["schema"] == USER_SCHEMA
    schemas = api.get("/scim/v2/Schemas", headers=okta).json()
    assert {s["id"] for s in schemas["Resources"]} == {USER_SCHEMA, GROUP_SCHEMA}
    assert api.get(f"/scim/v2/Schemas/{GROUP_SCHEMA}", headers=okta).json()["name"] == "Group"


# -- IdP groups onto standing groups -------------------------------------------------------------

AUDITORS = "  - name: AuditGroup\n    kind: standing\n    members: [auditor01]\n"


def test_a_directory_group_fills_the_standing_group_that_names_it_at_once(
    api: TestClient, core: Core, okta: dict[str, str]
) -> None:
    mapped = EXAMPLE_TEXT.replace(AUDITORS, AUDITORS + "    idp_groups: [Security-Auditors]\n")
    assert mapped != EXAMPLE_TEXT
    core.models.load(mapped, "mapped.yaml", ADMIN)
    member = new_user(api, okta, "member01@example.com")
    stranger = new_user(api, okta, "contractor@elsewhere.example")
    assert not core.models.model().is_auditor("member01")
    members = [{"value": member["id"]}, {"value": stranger["id"]}]
    body = {"schemas": [GROUP_SCHEMA], "displayName": "security-auditors", "members": members}
    group = api.post("/scim/v2/Groups", json=body, headers=okta).json()
    audit_group = core.models.model().group("AuditGroup")
    assert audit_group is not None
    assert audit_group.members == {"auditor01", "member01"}  # the stranger names nobody
    assert core.models.model().is_auditor("member01")
    assert set_active(api, okta, member["id"], False).status_code == 200
    assert not core.models.model().is_auditor("member01")  # an inactive user counts for none
    assert set_active(api, okta, member["id"], True).status_code == 200
    assert core.models.model().is_auditor("member01")
    remove = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "remove", "path": f'members[value eq "{member["id"]}"]'}],
    }
    assert api.patch(f"/scim/v2/Groups/{group['id']}", json=remove, headers=okta).status_code == 200
    assert not core.models.model().is_auditor("member01")


def test_a_work_group_never_takes_members_from_the_idp() -> None:
    work = "  - name: ProdMemberWorkGroup\n    kind: work\n"
    text = EXAMPLE_TEXT.replace(work, work + "    idp_groups: [engineers]\n")
    assert text != EXAMPLE_TEXT
    problems = [p.rule for p in check_text(text)]
    assert problems == ["work_group_idp_groups"]


def test_a_model_that_admits_an_idp_group_makes_its_members_users_until_they_leave(
    api: TestClient, core: Core, okta: dict[str, str]
) -> None:
    core.models.load(EXAMPLE_TEXT + ADMIT_ENGINEERS, "admit.yaml", ADMIN)
    newcomer = new_user(api, okta, "new.person@example.com")
    assert core.models.model().user("new.person@example.com") is None  # in no group yet
    members = [{"value": newcomer["id"]}]
    body = {"schemas": [GROUP_SCHEMA], "displayName": "engineers", "members": members}
    assert api.post("/scim/v2/Groups", json=body, headers=okta).status_code == 201
    assert core.models.model().user("new.person@example.com") is not None
    assert set_active(api, okta, newcomer["id"], False).status_code == 200
    [lock] = core.locks.list_locks(ADMIN)  # the leaver is locked, then no longer a user
    assert lock.subject == "new.person@example.com"
    assert core.models.model().user("new.person@example.com") is None


ADMIT_ENGINEERS = "\nidentity:\n  admit:\n    idp_groups: [Engineers]\n"
