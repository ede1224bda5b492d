"""Text with control characters is refused at the API, with the field named, and nothing is
stored: no ESC sequence, C1 control or bidi override reaches a terminal through the audit
trail, a request or a grant."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sekisho.bootstrap import Core
from sekisho.domain.access import Verb
from sekisho.domain.errors import InvalidInput
from sekisho.store.tables import AuditRow, RequestRow
from support import AUDITOR, INFO, MEMBER, People, request_body

PROBLEM = "application/problem+json"
ESCAPES = ["\x1b[2J", "\x1b]8;;https://evil.example/\x07x", "\x9b2J", "a\u202eb", "\x00", "\x7f"]


def counts(core: Core) -> tuple[int, int]:
    with core.db.read() as s:
        requests = s.scalar(select(func.count()).select_from(RequestRow)) or 0
        audits = s.scalar(select(func.count()).select_from(AuditRow)) or 0
    return requests, audits


def refused(response, field: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    errors = response.json()["errors"]
    assert {"field": field, "rule": "no_control_characters"} in [
        {"field": e["field"], "rule": e["rule"]} for e in errors
    ], errors


def test_a_decision_about_an_object_with_escapes_is_refused_and_not_audited(
    api: TestClient, people: People, core: Core
) -> None:
    headers = people.headers("auditor01")
    before = counts(core)
    for bad in ESCAPES:
        for field, query in (
            ("object", {"user": "member01", "verb": "connect", "object": f"console{bad}"}),
            ("user", {"user": f"member01{bad}", "verb": "assume", "object": "prod/Role"}),
        ):
            refused(api.post("/api/v1/decisions", json=query, headers=headers), field)
    assert counts(core) == before  # no denial was audited with the escape in it
    # a plain denial is still audited, as before
    plain = {"user": "member01", "verb": "connect", "object": "no-such-console"}
    assert api.post("/api/v1/decisions", json=plain, headers=headers).json()["allowed"] is False
    assert counts(core)[1] == before[1] + 1


def test_the_service_refuses_escapes_whoever_calls_it(core: Core) -> None:
    """The gateway asks the same service: it refuses there too, before any audit entry."""
    before = counts(core)
    for bad in ESCAPES:
        with pytest.raises(InvalidInput) as refused_object:
            core.authz.check(AUDITOR, "member01", Verb.CONNECT, f"console{bad}")
        assert refused_object.value.problems[0].rule == "no_control_characters"
        with pytest.raises(InvalidInput) as refused_user:
            core.authz.check(MEMBER, f"member01{bad}", Verb.CONNECT, "console")
        assert refused_user.value.problems[0].field == "user"
    assert counts(core) == before


def test_every_text_field_of_a_request_refuses_escapes(
    api: TestClient, people: People, core: Core
) -> None:
    headers = people.headers("member01")
    before = counts(core)
    for bad in ESCAPES:
        cases = [
            (request_body(reason=f"why{bad}"), "reason"),
            (request_body(template=f"AddUserToGroup{bad}"), "template"),
            (request_body(group=f"ProdMemberWorkGroup{bad}"), "group"),
            (request_body(info={**INFO, "change": f"rotate{bad}"}), "info.change"),
            (request_body(info={**INFO, f"change{bad}": "rotate"}), f"info.change{bad}"),
            (request_body(params={"ticket": f"T-1{bad}"}), "params.ticket"),
            (request_body(**{"for": f"2h{bad}"}), "for"),
        ]
        for payload, field in cases:
            refused(api.post("/api/v1/requests", json=payload, headers=headers), field)
    assert counts(core) == before


def test_line_breaks_stay_allowed_where_text_is_prose(api: TestClient, people: People) -> None:
    """A reason may have paragraphs (and a form's CRLF); a one-line field may not."""
    headers = people.headers("member01")
    made = api.post(
        "/api/v1/requests",
        json=request_body(reason="line one\r\nline two\n\tindented"),
        headers=headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["reason"] == "line one\nline two\n\tindented"
    refused(
        api.post("/api/v1/requests", json=request_body(template="Add\nUser"), headers=headers),
        "template",
    )
    request_id = made.json()["id"]
    lone_cr = api.post(
        f"/api/v1/requests/{request_id}/reject",
        json={"comment": "no\rYES, approved"},  # a bare CR rewrites the line on a terminal
        headers=people.headers("leader01"),
    )
    refused(lone_cr, "comment")


def test_comments_reasons_and_filters_refuse_escapes(
    api: TestClient, people: People, core: Core
) -> None:
    member, leader, admin = (people.headers(n) for n in ("member01", "leader01", "admin01"))
    request_id = api.post("/api/v1/requests", json=request_body(), headers=member).json()["id"]
    before = counts(core)
    for bad in ESCAPES:
        refused(
            api.post(
                f"/api/v1/requests/{request_id}/approve", json={"comment": bad}, headers=leader
            ),
            "comment",
        )
        refused(
            api.post(
                f"/api/v1/requests/{request_id}/reject", json={"comment": bad}, headers=leader
            ),
            "comment",
        )
        refused(api.post("/api/v1/grants/1/revoke", json={"reason": bad}, headers=admin), "reason")
        refused(
            api.post("/api/v1/auth/login", json={"user": bad, "password": "x", "otp": "1"}),
            "user",
        )
        refused(api.get("/api/v1/audit", params={"user": bad}, headers=admin), "query.user")
        refused(api.get("/api/v1/audit", params={"action": bad}, headers=admin), "query.action")
        refused(api.get("/api/v1/grants", params={"user": bad}, headers=admin), "query.user")
        refused(
            api.post("/api/v1/credentials", json={"role": f"prod/Role{bad}"}, headers=member),
            "role",
        )
    assert counts(core) == before
