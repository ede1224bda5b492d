"""The REST API: bearer auth, one write path, every refusal an RFC 9457 problem."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.gateway.pki import ensure_ca
from sekisho.store.tables import AuditRow, RequestRow
from support import INFO, People, code_for, version_reads
from support import request_body as body

PROBLEM = "application/problem+json"


def counts(core: Core) -> tuple[int, int]:
    with core.db.read() as s:
        requests = s.scalar(select(func.count()).select_from(RequestRow)) or 0
        audits = s.scalar(select(func.count()).select_from(AuditRow)) or 0
    return requests, audits


def assert_problem(response, status: int, code: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == f"urn:sekisho:problem:{code}"
    assert problem["detail"]
    return problem


def test_the_seed_flow_over_http(api: TestClient, people: People, core: Core) -> None:
    member, leader = people.headers("member01"), people.headers("leader01")
    ask = {"user": "member01", "verb": "assume", "object": "prod/Prod_MemberRole"}

    denied = api.post("/api/v1/decisions", json=ask, headers=member).json()
    assert denied["allowed"] is False
    assert denied["routes"] == [{"template": "AddUserToGroup", "group": "ProdMemberWorkGroup"}]

    filed = api.post("/api/v1/requests", json=body(), headers=member)
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["id"]
    assert filed.json()["status"] == "pending_approval"

    waiting = api.get("/api/v1/requests", params={"to_approve": True}, headers=leader).json()
    assert [r["id"] for r in waiting] == [request_id]

    approved = api.post(
        f"/api/v1/requests/{request_id}/approve", json={"comment": "go"}, headers=leader
    ).json()
    assert approved["status"] == "succeeded"
    assert approved["decisions"][0]["approver"] == "leader01"
    assert approved["decisions"][0]["comment"] == "go"
    assert approved["grant"]["active"] is True

    allowed = api.post("/api/v1/decisions", json=ask, headers=member).json()
    assert allowed["allowed"] is True
    assert allowed["grant_id"] == approved["grant"]["id"]

    me = api.get("/api/v1/me", headers=member).json()
    assert me["user"] == "member01"
    assert [g["group"] for g in me["grants"]] == ["ProdMemberWorkGroup"]


def test_no_token_forged_token_and_expired_token_are_401(
    api: TestClient, people: People, clock: ManualClock
) -> None:
    response = api.get("/api/v1/me")
    assert_problem(response, 401, "authentication-failed")
    assert response.headers["www-authenticate"] == "Bearer"

    forged = {"Authorization": "Bearer sks_" + "A" * 43}
    assert_problem(api.get("/api/v1/me", headers=forged), 401, "authentication-failed")

    headers = people.headers("member01")
    assert api.get("/api/v1/me", headers=headers).status_code == 200
    clock.advance(timedelta(hours=1, seconds=1))
    problem = assert_problem(api.get("/api/v1/me", headers=headers), 401, "authentication-failed")
    assert "expired" in str(problem["detail"])


def test_logout_revokes_the_token(api: TestClient, people: People) -> None:
    headers = people.headers("member01")
    assert api.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert_problem(api.get("/api/v1/me", headers=headers), 401, "authentication-failed")


def test_login_refusal_does_not_say_which_part_was_wrong(
    api: TestClient, people: People, core: Core
) -> None:
    password, secret = people.enroll("member01")
    code = code_for(core, secret)
    wrong_password = api.post(
        "/api/v1/auth/login", json={"user": "member01", "password": "nope", "otp": code}
    )
    unknown_user = api.post(
        "/api/v1/auth/login", json={"user": "ghost", "password": password, "otp": code}
    )
    a = assert_problem(wrong_password, 401, "authentication-failed")
    b = assert_problem(unknown_user, 401, "authentication-failed")
    assert a["detail"] == b["detail"]

    good = api.post(
        "/api/v1/auth/login", json={"user": "member01", "password": password, "otp": code}
    )
    assert good.status_code == 200
    assert good.json()["token"].startswith("sks_")


def test_a_throttled_sign_in_is_429_and_audited(
    api: TestClient, people: People, core: Core
) -> None:
    password, secret = people.enroll("member01")
    for _ in range(core.settings.lockout_threshold):
        api.post("/api/v1/auth/login", json={"user": "member01", "password": "x", "otp": "000000"})
    locked = api.post(
        "/api/v1/auth/login",
        json={"user": "member01", "password": password, "otp": code_for(core, secret)},
    )
    assert_problem(locked, 429, "login-throttled")
    with core.db.read() as s:
        actions = list(s.scalars(select(AuditRow.action).where(AuditRow.subject == "member01")))
    assert actions.count("auth.login_failed") == core.settings.lockout_threshold
    assert "auth.login_refused" in actions


def test_invalid_input_names_field_and_rule_and_changes_nothing(
    api: TestClient, people: People, core: Core
) -> None:
    headers = people.headers("member01")
    before = counts(core)
    cases = [
        (body(until="2020-01-01T00:00:00Z", **{"for": None}), "until", "in_future"),
        (body(**{"for": "13h"}), "for", "max_duration"),
        (body(**{"for": "soon"}), "for", "duration_format"),
        (body(until="tomorrow-ish", **{"for": None}), "until", "time_format"),
        (body(group="LeaderGroup"), "group", "work_group_only"),
        (body(template="Nope"), "template", "unknown_template"),
        (body(reason="\x1b[31mred"), "reason", "no_control_characters"),
        (body(reason="x" * 4001), "reason", "max_length"),
        (body(info={**INFO, "bogus": "x"}), "info.bogus", "unknown_section"),
        (body(params={"ticket": "not a ticket"}), "param.ticket", "pattern"),
    ]
    for given, field, rule in cases:
        payload = {k: v for k, v in given.items() if v is not None}
        response = api.post("/api/v1/requests", json=payload, headers=headers)
        problem = assert_problem(response, 422, "invalid-input")
        assert {"field": field, "rule": rule} in [
            {"field": e["field"], "rule": e["rule"]}
            for e in problem["errors"]  # type: ignore[union-attr]
        ], (field, rule, problem)
    assert counts(core) == before


def test_shape_errors_are_422_problems(api: TestClient, people: People) -> None:
    headers = people.headers("member01")
    unknown_field = api.post("/api/v1/requests", json=body(colour="red"), headers=headers)
    problem = assert_problem(unknown_field, 422, "invalid-input")
    assert problem["errors"][0]["field"] == "colour"  # type: ignore[index]

    missing = api.post("/api/v1/requests", json={"template": "AddUserToGroup"}, headers=headers)
    fields = {e["field"] for e in assert_problem(missing, 422, "invalid-input")["errors"]}  # type: ignore[union-attr]
    assert {"group", "reason"} <= fields

    not_json = api.post(
        "/api/v1/requests",
        content=b"{not json",
        headers={**headers, "content-type": "application/json"},
    )
    assert_problem(not_json, 422, "invalid-input")

    bad_id = api.get("/api/v1/requests/0", headers=headers)
    assert_problem(bad_id, 422, "invalid-input")


def test_oversized_body_is_refused_before_parsing(api: TestClient, people: People) -> None:
    headers = people.headers("member01")
    response = api.post("/api/v1/requests", json=body(reason="x" * 70_000), headers=headers)
    assert_problem(response, 413, "too-large")


def test_separation_of_duties_over_http(api: TestClient, people: People) -> None:
    member, leader = people.headers("member01"), people.headers("leader01")
    request_id = api.post("/api/v1/requests", json=body(), headers=member).json()["id"]

    self_approval = api.post(f"/api/v1/requests/{request_id}/approve", headers=member)
    # The requester cannot see an approve path: they are refused as a self-approver.
    assert_problem(self_approval, 403, "self-approval")

    outsider = api.post(
        f"/api/v1/requests/{request_id}/approve", headers=people.headers("member02")
    )
    assert_problem(outsider, 404, "not-found")  # not theirs to see

    reject_silently = api.post(
        f"/api/v1/requests/{request_id}/reject", json={"comment": ""}, headers=leader
    )
    assert_problem(reject_silently, 422, "invalid-input")

    assert api.post(f"/api/v1/requests/{request_id}/approve", headers=leader).status_code == 200
    again = api.post(f"/api/v1/requests/{request_id}/approve", headers=people.headers("leader02"))
    assert_problem(again, 409, "already-decided")


def test_cancel_only_by_the_requester_while_pending(api: TestClient, people: People) -> None:
    member = people.headers("member01")
    request_id = api.post("/api/v1/requests", json=body(), headers=member).json()["id"]
    by_leader = api.post(
        f"/api/v1/requests/{request_id}/cancel", headers=people.headers("leader01")
    )
    assert_problem(by_leader, 403, "forbidden")
    cancelled = api.post(f"/api/v1/requests/{request_id}/cancel", headers=member)
    assert cancelled.json()["status"] == "cancelled"
    twice = api.post(f"/api/v1/requests/{request_id}/cancel", headers=member)
    assert_problem(twice, 409, "conflict")


def test_release_and_revoke(api: TestClient, people: People) -> None:
    member, leader, admin = (people.headers(n) for n in ("member01", "leader01", "admin01"))
    first = api.post("/api/v1/requests", json=body(), headers=member).json()["id"]
    grant = api.post(f"/api/v1/requests/{first}/approve", headers=leader).json()["grant"]

    not_holder = api.post(f"/api/v1/grants/{grant['id']}/release", headers=leader)
    assert_problem(not_holder, 404, "not-found")
    released = api.post(f"/api/v1/grants/{grant['id']}/release", headers=member).json()
    assert (released["status"], released["end_reason"]) == ("revoked", "released")

    second = api.post("/api/v1/requests", json=body(), headers=member).json()["id"]
    grant = api.post(f"/api/v1/requests/{second}/approve", headers=leader).json()["grant"]
    by_member = api.post(
        f"/api/v1/grants/{grant['id']}/revoke", json={"reason": "x"}, headers=member
    )
    assert_problem(by_member, 403, "forbidden")
    no_reason = api.post(f"/api/v1/grants/{grant['id']}/revoke", json={"reason": ""}, headers=admin)
    assert_problem(no_reason, 422, "invalid-input")
    revoked = api.post(
        f"/api/v1/grants/{grant['id']}/revoke", json={"reason": "incident 42"}, headers=admin
    ).json()
    assert (revoked["status"], revoked["end_reason"], revoked["end_note"]) == (
        "revoked",
        "revoked",
        "incident 42",
    )


def test_extend_a_grant_over_http(api: TestClient, people: People, core: Core) -> None:
    member, leader = people.headers("member01"), people.headers("leader01")
    first = api.post("/api/v1/requests", json=body(), headers=member).json()["id"]
    grant = api.post(f"/api/v1/requests/{first}/approve", headers=leader).json()["grant"]
    shown = api.get(f"/api/v1/grants/{grant['id']}", headers=member).json()
    assert "extend" in shown["allowed_actions"]
    assert (
        "extend"
        not in api.get(f"/api/v1/requests/{first}", headers=leader).json()["grant"][
            "allowed_actions"
        ]
    )

    path = f"/api/v1/grants/{grant['id']}/extend"
    before = counts(core)
    for ask, field, rule in [
        ({"for": "1h", "reason": ""}, "reason", "required"),
        ({"for": "7h", "reason": "more"}, "for", "max_duration"),
        ({"until": grant["end_at"], "reason": "more"}, "until", "after_current_end"),
        ({"reason": "more"}, "until", "one_of_until_or_for"),
    ]:
        problem = assert_problem(api.post(path, json=ask, headers=member), 422, "invalid-input")
        assert {"field": field, "rule": rule} in [
            {"field": e["field"], "rule": e["rule"]}
            for e in problem["errors"]  # type: ignore[attr-defined]
        ]
    assert_problem(
        api.post(path, json={"for": "1h", "reason": "x"}, headers=leader), 404, "not-found"
    )
    missing = api.post(
        "/api/v1/grants/999/extend", json={"for": "1h", "reason": "x"}, headers=member
    )
    assert_problem(missing, 404, "not-found")
    assert counts(core) == before  # refused: nothing filed, nothing audited

    asked = api.post(path, json={"for": "1h", "reason": "overran"}, headers=member)
    assert asked.status_code == 201, asked.text
    extension = asked.json()
    assert (extension["status"], extension["extends_grant_id"]) == ("pending_approval", grant["id"])
    again = api.post(path, json={"for": "30m", "reason": "more"}, headers=member)
    assert_problem(again, 409, "conflict")
    waiting = api.get("/api/v1/requests", params={"to_approve": True}, headers=leader).json()
    assert [r["id"] for r in waiting] == [extension["id"]]
    done = api.post(f"/api/v1/requests/{extension['id']}/approve", headers=leader).json()
    assert done["status"] == "succeeded"
    after = api.get(f"/api/v1/grants/{grant['id']}", headers=member).json()
    assert after["end_at"] == extension["end_at"]
    assert after["start_at"] == grant["start_at"]

    released = api.post(f"/api/v1/grants/{grant['id']}/release", headers=member).json()
    assert "extend" not in released["allowed_actions"]
    ended = api.post(path, json={"for": "1h", "reason": "more"}, headers=member)
    assert_problem(ended, 409, "conflict")


def test_asking_about_someone_else_needs_audit_rights(api: TestClient, people: People) -> None:
    ask = {"user": "member02", "verb": "assume", "object": "dev/Dev_MemberRole"}
    refused = api.post("/api/v1/decisions", json=ask, headers=people.headers("member01"))
    assert_problem(refused, 403, "forbidden")
    answered = api.post("/api/v1/decisions", json=ask, headers=people.headers("auditor01"))
    assert answered.json()["allowed"] is True
    assert answered.json()["standing"] is True

    bad_verb = api.post(
        "/api/v1/decisions", json={**ask, "verb": "delete"}, headers=people.headers("auditor01")
    )
    assert_problem(bad_verb, 422, "invalid-input")


def test_audit_is_for_auditors_and_verifies(api: TestClient, people: People) -> None:
    member = people.headers("member01")
    api.post("/api/v1/requests", json=body(), headers=member)
    assert_problem(api.get("/api/v1/audit", headers=member), 403, "forbidden")

    auditor = people.headers("auditor01")
    entries = api.get("/api/v1/audit", params={"action": "request."}, headers=auditor).json()
    assert [e["action"] for e in entries] == ["request.filed"]
    assert entries[0]["subject"] == "member01"
    assert "password" not in str(entries)

    report = api.get("/api/v1/audit/verify", headers=auditor).json()
    assert report["ok"] is True
    assert report["entries"] >= 3


def test_user_show_reveals_the_directory_to_self_and_auditors(
    api: TestClient, people: People
) -> None:
    member, leader = people.headers("member01"), people.headers("leader01")
    request_id = api.post("/api/v1/requests", json=body(), headers=member).json()["id"]
    api.post(f"/api/v1/requests/{request_id}/approve", headers=leader)

    me = api.get("/api/v1/users/member01", headers=member).json()
    assert me["directory"]["memberships"] == ["ProdMemberWorkGroup"]
    assert me["directory"]["tags"]["ProdMemberWorkGroup"].endswith("Z")
    assert_problem(api.get("/api/v1/users/member01", headers=leader), 403, "forbidden")
    assert api.get("/api/v1/users/member01", headers=people.headers("auditor01")).status_code == 200


def test_openapi_schema_documents_the_api(api: TestClient) -> None:
    schema = api.get("/api/v1/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/api/v1/auth/login",
        "/api/v1/requests",
        "/api/v1/requests/{request_id}/approve",
        "/api/v1/grants/{grant_id}/revoke",
        "/api/v1/decisions",
        "/api/v1/audit/verify",
    } <= paths
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_gateway_info_and_sessions_need_a_login(
    api: TestClient, people: People, core: Core
) -> None:
    assert_problem(api.get("/api/v1/gateway"), 401, "authentication-failed")
    info = api.get("/api/v1/gateway", headers=people.headers("member01")).json()
    assert info == {"address": "127.0.0.1:8471", "ca_pem": None}  # no CA made yet
    ensure_ca(core.settings.data_dir)
    info = api.get("/api/v1/gateway", headers=people.headers("member01")).json()
    assert info["ca_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert api.get("/api/v1/sessions", headers=people.headers("member01")).json() == []
    missing = api.post("/api/v1/sessions/99/kill", headers=people.headers("admin01"))
    assert_problem(missing, 404, "not-found")


def test_liveness_and_readiness_answer_without_a_login(api: TestClient) -> None:
    live = api.get("/api/v1/healthz")
    assert live.status_code == 200
    assert live.json()["status"] == "ok"
    ready = api.get("/api/v1/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


def test_each_request_decides_under_one_model_version(api: TestClient, people: People) -> None:
    """Filing (authentication, the filing, the view it answers with) and approving (the
    decision, the runbook, the view) each take several transactions; each request asks the
    store for the version in force once, and all its transactions decide under it."""
    member, leader = people.headers("member01"), people.headers("leader01")
    with version_reads() as filing:
        filed = api.post("/api/v1/requests", json=body(), headers=member)
    assert filed.status_code == 201, filed.text
    with version_reads() as approving:
        approved = api.post(
            f"/api/v1/requests/{filed.json()['id']}/approve", json={}, headers=leader
        )
    assert approved.json()["status"] == "succeeded", approved.text
    assert (sum(filing), sum(approving)) == (1, 1)
