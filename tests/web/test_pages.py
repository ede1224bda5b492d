"""The pages without a browser: forms, refusals mapped once, live fragments, exports."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from web_support import csrf_of, seed_story

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.actor import Actor
from sekisho.store.tables import AuditRow, GrantRow, RequestRow
from sekisho.web import audit_export, request_link
from support import ADMIN, EXAMPLE_TEXT, INFO, LEADER, MEMBER, draft

SignIn = Callable[[str], TestClient]


def new_request_form(**overrides: str) -> dict[str, str]:
    form = {
        "template": "AddUserToGroup",
        "group": "ProdMemberWorkGroup",
        "end": "2h",
        "reason": "fix the payment console",
        **{f"info.{k}": v for k, v in INFO.items()},
    }
    form.update(overrides)
    return form


def file(client: TestClient, **overrides: str) -> httpx.Response:
    page = client.get("/requests/new")
    return client.post(
        "/requests/new", data={"csrf": csrf_of(page.text), **new_request_form(**overrides)}
    )


def post(client: TestClient, path: str, page: str, **data: str) -> httpx.Response:
    return client.post(path, data={"csrf": csrf_of(client.get(page).text), **data})


def count(core: Core, table: type) -> int:
    with core.db.read() as s:
        return s.scalar(select(func.count()).select_from(table)) or 0


def errors_beside(html: str, field_id: str) -> str:
    found = re.search(rf'<ul class="field-errors" id="{field_id}">(.*?)</ul>', html, re.S)
    assert found, f"no errors beside {field_id}"
    return found.group(1)


# -- filing ----------------------------------------------------------------------------------


def test_the_form_offers_only_what_the_user_may_request(sign_in: SignIn) -> None:
    member = sign_in("member01").get("/requests/new").text
    assert re.findall(r'<option value="(\w+WorkGroup)"', member) == ["ProdMemberWorkGroup"]
    leader = sign_in("leader01").get("/requests/new").text
    assert re.findall(r'<option value="(\w+WorkGroup)"', leader) == [
        "ProdLeaderWorkGroup",
        "ProdMemberWorkGroup",
    ]
    assert 'name="info.rollback"' in member
    assert 'name="param.ticket"' in member
    # Quick durations beyond the template's maximum are not offered (8h here: all four are).
    assert re.findall(r'name="end" value="(\w+)"', member) == ["30m", "1h", "2h", "4h", "until"]


def test_the_template_part_of_the_form_follows_the_template(sign_in: SignIn) -> None:
    client = sign_in("member01")
    removal = client.get("/requests/new/fields?template=RemoveUserFromGroup")
    assert removal.status_code == 200
    assert "<html" not in removal.text  # a fragment for htmx
    assert "How long" not in removal.text
    assert 'name="start"' not in removal.text
    assert "Only the groups you may ask for with RemoveUserFromGroup" in removal.text


def test_invalid_input_comes_back_beside_each_field_and_files_nothing(
    sign_in: SignIn, core: Core
) -> None:
    client = sign_in("member01")
    answer = file(client, **{"param.ticket": "change 12", "reason": "x"})
    assert answer.status_code == 422
    html = answer.text
    assert "must match [A-Z]+-[0-9]+" in errors_beside(html, "param-ticket-errors")
    assert "rule: pattern" in errors_beside(html, "param-ticket-errors")
    assert 'value="change 12"' in html  # what was typed stays
    assert count(core, RequestRow) == 0

    too_long = file(client, end="until", until="2026-11-30T09:00", tz="Asia/Tokyo")
    assert too_long.status_code == 422
    beside = errors_beside(too_long.text, "end-errors")
    assert "grants at most 8h" in beside
    assert "rule: max_duration" in beside

    missing = file(client, **{"info.rollback": "  "})
    assert "Rollback plan is required" in errors_beside(
        missing.text,
        "info-rollback-errors",
    )
    assert count(core, RequestRow) == 0


@pytest.mark.parametrize(
    ("tz", "end_utc"),
    [
        ("Europe/Paris", datetime(2026, 11, 29, 11, 0, tzinfo=UTC)),  # the browser's zone
        ("", datetime(2026, 11, 29, 3, 0, tzinfo=UTC)),  # no script: the model's (Tokyo)
    ],
)
def test_a_date_time_picker_value_is_read_in_the_browsers_zone(
    sign_in: SignIn, core: Core, tz: str, end_utc: datetime
) -> None:
    until = "2026-11-29T12:00"
    answer = file(sign_in("member01"), end="until", until=until, tz=tz)
    if end_utc <= core.now():
        assert answer.status_code == 422
        assert "is not in the future" in answer.text
        return
    assert answer.status_code == 303
    with core.db.read() as s:
        assert s.scalar(select(RequestRow.end_at)) == end_utc


def test_filing_goes_to_the_requests_page_with_its_deep_link(sign_in: SignIn, core: Core) -> None:
    client = sign_in("member01")
    answer = file(client, **{"param.ticket": "CHG-1234", "start": "2026-11-29T19:00"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/requests/1"
    page = client.get("/requests/1").text
    assert "Request #1 filed: pending approval." in page
    link = request_link(core.settings.public_url, 1)
    assert link == "http://127.0.0.1:8470/requests/1"
    assert f'href="{link}"' in page
    assert "CHG-1234" in page
    assert "payment admin console" in page
    assert "Request #1 filed" not in client.get("/requests/1").text  # the flash shows once
    assert re.search(r"My requests <span class=\"count\">1<", page)


# -- deciding --------------------------------------------------------------------------------


def test_approving_rejecting_and_cancelling_follow_the_rules(sign_in: SignIn, core: Core) -> None:
    request_id = core.workflow.file(MEMBER, draft()).id
    page = f"/requests/{request_id}"
    member, leader = sign_in("member01"), sign_in("leader01")

    assert 'To approve <span class="count">1<' in leader.get("/requests/mine").text
    assert 'action="/requests/1/approve"' in leader.get(page).text
    assert 'action="/requests/1/approve"' not in member.get(page).text
    assert 'action="/requests/1/cancel"' in member.get(page).text

    self_approval = post(member, f"{page}/approve", page, comment="me")
    assert self_approval.status_code == 403
    assert "Nobody approves their own request" in self_approval.text

    no_reason = post(leader, f"{page}/reject", page, comment="  ")
    assert no_reason.status_code == 422
    assert "say why you reject" in errors_beside(no_reason.text, "reject-errors")

    not_theirs = post(leader, f"{page}/cancel", page)
    assert not_theirs.status_code == 403

    approved = post(leader, f"{page}/approve", page, comment="OK, go ahead")
    assert approved.status_code == 303
    shown = leader.get(page).text
    assert "You approved request #1: succeeded." in shown
    assert "OK, go ahead" in shown

    late = post(sign_in("leader02"), f"{page}/approve", page, comment="me too")
    assert late.status_code == 409
    assert "already succeeded" in late.text


def test_the_decide_buttons_follow_the_workflow_s_rules_level_by_level(
    sign_in: SignIn, core: Core
) -> None:
    two_approvals = EXAMPLE_TEXT.replace(
        "      - approvers: ChangeApprovalGroup\n        min_approvals: 1\n    max_duration: 8h",
        "      - approvers: ChangeApprovalGroup\n        min_approvals: 2\n    max_duration: 8h",
        1,
    ).replace(  # a leader's own request still has two approvers to go to
        "    description: Approves production work (the seed's ScrumMasterGroup)\n"
        "    members: [leader01, leader02]",
        "    description: Approves production work (the seed's ScrumMasterGroup)\n"
        "    members: [leader01, leader02, admin01]",
    )
    assert "min_approvals: 2" in two_approvals
    assert "leader02, admin01]" in two_approvals
    core.models.load(two_approvals, "two-approvals.yaml", ADMIN)
    request_id = core.workflow.file(MEMBER, draft()).id
    page = f"/requests/{request_id}"
    approve_form = f'action="/requests/{request_id}/approve"'
    leader01, leader02 = sign_in("leader01"), sign_in("leader02")
    assert approve_form in leader01.get(page).text
    assert approve_form in leader02.get(page).text

    core.workflow.approve(LEADER, request_id, "one of two")
    assert approve_form not in leader01.get(page).text  # each person decides once
    assert post(leader01, f"{page}/approve", page, comment="again").status_code == 409
    assert approve_form in leader02.get(page).text  # the level still waits for a second

    core.workflow.approve(Actor("leader02", "test"), request_id, "two of two")
    assert approve_form not in leader02.get(page).text  # nothing waits any more


def test_the_holder_releases_their_own_grant(sign_in: SignIn, core: Core) -> None:
    request = core.workflow.file(MEMBER, draft())
    grant = core.workflow.approve(LEADER, request.id, "ok").grant
    assert grant is not None
    member = sign_in("member01")
    assert f'action="/grants/{grant.id}/release"' in member.get("/access").text
    other = post(sign_in("member02"), f"/grants/{grant.id}/release", "/access", back="/access")
    assert other.status_code == 404
    done = post(member, f"/grants/{grant.id}/release", "/access", back=f"/requests/{request.id}")
    assert done.headers["location"] == f"/requests/{request.id}"
    with core.db.read() as s:
        row = s.get_one(GrantRow, grant.id)
        assert (row.status, row.end_reason) == ("revoked", "released")
    assert "released by its holder" in member.get("/access").text


def test_the_holder_extends_their_grant_from_its_page(sign_in: SignIn, core: Core) -> None:
    request = core.workflow.file(MEMBER, draft())  # 2h, until 11:00 UTC
    grant = core.workflow.approve(LEADER, request.id, "ok").grant
    assert grant is not None
    page = f"/requests/{request.id}"
    member = sign_in("member01")
    shown = member.get(page).text
    assert f'action="/grants/{grant.id}/extend"' in shown
    assert 'value="4h"' in shown
    assert 'value="30m"' in shown
    leader = sign_in("leader01")
    assert f'action="/grants/{grant.id}/extend"' not in leader.get(page).text
    refused = post(leader, f"/grants/{grant.id}/extend", page, end="1h", reason="x", back=page)
    assert refused.status_code == 404

    # Bad input comes back beside its field on the grant's page; nothing is filed.
    late = "2026-11-29T17:00"  # 17:00 in Paris is 16:00 UTC: the grant would last 7h, fine
    too_far = "2026-11-29T18:30"  # 17:30 UTC: 8h30m from the start, over the maximum
    over = post(
        member,
        f"/grants/{grant.id}/extend",
        page,
        end="until",
        until=too_far,
        tz="Europe/Paris",
        reason="more",
        back=page,
    )
    assert over.status_code == 422
    beside = errors_beside(over.text, "extend-end-errors")
    assert "rule: max_duration" in beside
    assert "grants at most 8h" in beside
    no_reason = post(member, f"/grants/{grant.id}/extend", page, end="1h", reason=" ", back=page)
    assert "rule: required" in errors_beside(no_reason.text, "extend-errors")
    assert count(core, RequestRow) == 1

    done = post(
        member,
        f"/grants/{grant.id}/extend",
        page,
        end="until",
        until=late,
        tz="Europe/Paris",
        reason="the rotation overran",
        back=page,
    )
    assert done.status_code == 303
    extension_id = int(done.headers["location"].removeprefix("/requests/"))
    extension = member.get(done.headers["location"]).text
    assert f"grant #{grant.id} of" in extension
    assert f'href="{page}"' in extension
    assert "Pending approval" in extension or "pending" in extension.lower()
    with core.db.read() as s:
        row = s.get_one(RequestRow, extension_id)
        assert (row.extends_grant_id, row.end_at) == (
            grant.id,
            datetime(2026, 11, 29, 16, 0, tzinfo=UTC),
        )
    # The approver decides it on its own page, as any request.
    assert 'action="/requests/' in leader.get(f"/requests/{extension_id}").text


# -- reading ---------------------------------------------------------------------------------


def test_the_live_part_polls_until_nothing_can_change(
    sign_in: SignIn, core: Core, clock: ManualClock
) -> None:
    request_id = core.workflow.file(MEMBER, draft(duration="30m")).id
    client = sign_in("member01")
    live = client.get(f"/requests/{request_id}/live?seen=pending_approval")
    assert 'hx-trigger="every 2s"' in live.text
    core.workflow.approve(LEADER, request_id, "ok")
    changed = client.get(f"/requests/{request_id}/live?seen=pending_approval")
    assert changed.status_code == 204
    assert changed.headers["HX-Refresh"] == "true"
    running = client.get(f"/requests/{request_id}/live?seen=succeeded")
    assert 'hx-trigger="every 10s"' in running.text  # access is live: slower
    clock.advance(timedelta(minutes=30))
    core.sweeper.run_due()
    final = client.get(f"/requests/{request_id}/live?seen=succeeded")
    assert "hx-trigger" not in final.text
    assert "grant #1 expired; the provider confirmed" in final.text


def test_a_poll_after_the_token_ended_sends_the_whole_page_to_sign_in(
    sign_in: SignIn, clock: ManualClock
) -> None:
    client = sign_in("member01")
    clock.advance(timedelta(hours=1))  # the token's lifetime
    poll = client.get(
        "/access/live",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/access"},
    )
    assert poll.status_code == 204
    assert poll.headers["HX-Redirect"] == "/signin?next=/access"  # the page, not the fragment
    page = client.get("/access")
    assert page.headers["location"] == "/signin?next=/access"
    posted = client.post(
        "/requests/new",
        data={"csrf": "x"},
        headers={"Referer": "http://testserver/requests/new?template=AddUserToGroup"},
    )
    assert posted.headers["location"] == "/signin?next=/requests/new%3Ftemplate%3DAddUserToGroup"


def test_refusals_are_pages_and_the_api_keeps_its_problems(sign_in: SignIn, core: Core) -> None:
    request_id = core.workflow.file(MEMBER, draft()).id
    other = sign_in("member02")
    hidden = other.get(f"/requests/{request_id}")
    assert hidden.status_code == 404
    assert "text/html" in hidden.headers["content-type"]
    assert "no request #1" in hidden.text
    assert other.get("/requests/abc").status_code == 404
    assert other.get("/audit").status_code == 403
    missing = other.get("/nowhere")
    assert (missing.status_code, "Page not found" in missing.text) == (404, True)
    api = other.get("/api/v1/nowhere")
    assert api.headers["content-type"].startswith("application/problem+json")
    assert other.get("/api/v1/healthz").json()["status"] == "ok"


def test_pages_carry_a_strict_policy_and_no_outside_assets(sign_in: SignIn) -> None:
    client = sign_in("admin01")
    for path in ("/requests/mine", "/requests/new", "/access", "/sessions", "/audit", "/model"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert not re.search(r'(src|href)="(https?:)?//', page.text), path
        assert "<script>" not in page.text  # scripts come from /static only
    for asset in ("/static/htmx.min.js", "/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert client.get("/static/htmx.min.js").text.startswith("/*! htmx 2.")


def test_the_model_picture_shows_what_needs_approval(sign_in: SignIn) -> None:
    html = sign_in("member01").get("/model").text
    assert '<svg viewBox="0 0' in html
    assert 'role="img"' in html
    assert "Only through an approved request:" in html
    for resource in ("prod/Prod_MemberRole", "prod/Prod_LeaderRole", "prod-admin-console"):
        node = re.search(rf'<g class="node node-resource ([^"]*)">\s*<title>{resource}:', html)
        assert node, resource
        assert node.group(1) == "approval-only", resource
    node = re.search(r'<g class="node node-resource ([^"]*)">\s*<title>dev/Dev_MemberRole:', html)
    assert node
    assert node.group(1) == "standing-access"
    assert html.count('class="edge edge-grants"') == 6  # two work groups x three resources
    assert "ChangeApprovalGroup approves AddUserToGroup requests for ProdMemberWorkGroup" in html


def test_sessions_show_bytes_and_only_admins_get_kill(
    sign_in: SignIn, core: Core, clock: ManualClock
) -> None:
    story = seed_story(core, clock)
    member = sign_in("member01").get("/sessions").text
    assert f'data-session="{story["session"]}"' in member
    assert "9.4 MiB" in member
    assert "20m 30s" in member
    assert "Kill #" not in member
    admin = sign_in("admin01").get("/sessions").text
    assert f"Kill #{story['session']}" in admin


# -- audit -----------------------------------------------------------------------------------


def test_audit_filters_are_checked_beside_their_boxes(sign_in: SignIn) -> None:
    auditor = sign_in("auditor01")
    bad = auditor.get("/audit", params={"request": "abc", "since": "yesterday"})
    assert bad.status_code == 422
    assert "rule: integer" in errors_beside(bad.text, "request-errors")
    assert "rule: time_format" in errors_beside(bad.text, "since-errors")
    assert 'value="abc"' in bad.text


def test_audit_pages_and_exports_share_the_filters(
    sign_in: SignIn, core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        request_id = core.workflow.file(MEMBER, draft()).id
        core.workflow.cancel(MEMBER, request_id)
    auditor = sign_in("auditor01")
    page = auditor.get("/audit", params={"action": "request.", "user": "member01"})
    assert page.status_code == 200
    assert page.text.count("<code>request.") == 6
    assert 'href="/audit/export.csv?user=member01&amp;action=request."' in page.text
    verified = auditor.get("/audit/verify").text
    assert "Verified" in verified
    assert f"{count(core, AuditRow)} entries" in verified

    monkeypatch.setattr(audit_export, "BATCH", 4)  # several batches, streamed
    exported = auditor.get("/audit/export.csv", params={"action": "request."})
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["action"] for r in rows] == ["request.cancelled", "request.filed"] * 3
    assert [int(r["seq"]) for r in rows] == sorted((int(r["seq"]) for r in rows), reverse=True)
    lines = auditor.get("/audit/export.jsonl", params={"action": "request."}).text.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [int(r["seq"]) for r in rows]

    older = auditor.get("/audit", params={"before": rows[1]["seq"], "action": "request."})
    assert older.text.count("<code>request.") == 4
