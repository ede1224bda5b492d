"""Emergency changes over HTTP: `emergency: true` grants at once, the views carry the badge,
POST /requests/{id}/review records the review, GET /audit/emergencies counts the use; each
refusal is a problem naming its field and rule (or its code), and changes nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from test_api import assert_problem, counts

from sekisho.bootstrap import Core
from support import ADMIN, EXAMPLE_TEXT, People, example_with_emergency, request_body

TICKET = {"ticket": "INC-42"}


def emergency_body(**overrides: object) -> dict[str, object]:
    return request_body(**{"emergency": True, "params": TICKET, "for": "1h", **overrides})


def test_an_emergency_over_http_is_granted_badged_reviewed_and_counted(
    core: Core, api: TestClient, people: People
) -> None:
    core.models.load(example_with_emergency(), "emergency.yaml", ADMIN)
    member, leader = people.headers("member01"), people.headers("leader01")
    filed = api.post("/api/v1/requests", json=emergency_body(), headers=member)
    assert filed.status_code == 201, filed.text
    view = filed.json()
    assert view["emergency"] is True
    assert view["status"] == "succeeded"
    assert view["grant"]["active"] is True
    assert view["review_due_at"] == "2026-11-30T09:00:00Z"
    listed = api.get("/api/v1/requests", params={"emergency": True}, headers=leader).json()
    assert [(r["id"], r["emergency"]) for r in listed] == [(view["id"], True)]
    assert (
        "review"
        in api.get(f"/api/v1/requests/{view['id']}", headers=leader).json()["allowed_actions"]
    )

    reviewed = api.post(
        f"/api/v1/requests/{view['id']}/review", json={"comment": "justified"}, headers=leader
    )
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["reviewed_by"] == "leader01"
    assert reviewed.json()["review_comment"] == "justified"
    assert "review" not in reviewed.json()["allowed_actions"]
    again = api.post(
        f"/api/v1/requests/{view['id']}/review",
        json={"comment": "again"},
        headers=people.headers("leader02"),
    )
    assert_problem(again, 409, "already-reviewed")

    counted = api.get("/api/v1/audit/emergencies", headers=people.headers("auditor01"))
    assert counted.status_code == 200, counted.text
    [mine] = counted.json()
    assert (mine["user"], mine["uses"], mine["reviewed"], mine["overdue"]) == ("member01", 1, 1, 0)
    assert_problem(api.get("/api/v1/audit/emergencies", headers=member), 403, "forbidden")


def test_bad_emergency_filings_are_422_problems_and_change_nothing(
    core: Core, api: TestClient, people: People
) -> None:
    core.models.load(example_with_emergency(), "emergency.yaml", ADMIN)
    headers = people.headers("member01")
    before = counts(core)
    cases = [
        (emergency_body(params={}), "param.ticket", "required"),
        (emergency_body(reason=""), "reason", "required"),
        (emergency_body(**{"for": "2h"}), "for", "max_duration"),
        (emergency_body(start="2026-11-29T10:00:00Z"), "start", "not_applicable"),
    ]
    for given, field, rule in cases:
        problem = assert_problem(
            api.post("/api/v1/requests", json=given, headers=headers), 422, "invalid-input"
        )
        found = [(e["field"], e["rule"]) for e in problem["errors"]]  # type: ignore[attr-defined]
        assert (field, rule) in found, (field, rule, problem)
    other = api.post(
        "/api/v1/requests", json=emergency_body(group="ProdLeaderWorkGroup"), headers=headers
    )
    assert_problem(other, 403, "not-eligible")
    core.models.load(EXAMPLE_TEXT, "plain.yaml", ADMIN)
    plain = api.post("/api/v1/requests", json=emergency_body(), headers=headers)
    problem = assert_problem(plain, 422, "invalid-input")
    assert problem["errors"][0]["rule"] == "no_emergency"  # type: ignore[index]
    assert counts(core)[0] == before[0]


def test_bad_reviews_are_problems_and_change_nothing(
    core: Core, api: TestClient, people: People
) -> None:
    core.models.load(example_with_emergency(), "emergency.yaml", ADMIN)
    member, leader = people.headers("member01"), people.headers("leader01")
    used = api.post("/api/v1/requests", json=emergency_body(), headers=member).json()["id"]
    ordinary = api.post("/api/v1/requests", json=request_body(), headers=people.headers("member02"))
    path = f"/api/v1/requests/{used}/review"
    assert_problem(api.post(path, json={"comment": "fine"}, headers=member), 403, "self-review")
    auditor = people.headers("auditor01")
    assert_problem(api.post(path, json={"comment": "fine"}, headers=auditor), 403, "not-approver")
    empty = assert_problem(
        api.post(path, json={"comment": " "}, headers=leader), 422, "invalid-input"
    )
    assert empty["errors"] == [  # type: ignore[comparison-overlap]
        {"field": "comment", "rule": "required", "message": "say what the review found"}
    ]
    not_emergency = api.post(
        f"/api/v1/requests/{ordinary.json()['id']}/review", json={"comment": "x"}, headers=leader
    )
    problem = assert_problem(not_emergency, 422, "invalid-input")
    assert problem["errors"][0]["rule"] == "not_emergency"  # type: ignore[index]
    after = api.get(f"/api/v1/requests/{used}", headers=leader).json()
    assert after["reviewed_at"] is None
    assert "review" in after["allowed_actions"]
