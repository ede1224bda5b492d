"""Emergency changes in the web UI: the new-request form's checkbox, the badge on the lists and
the request's page, the review form for approvers, the count on the audit page."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from test_pages import SignIn, count, errors_beside, file, post

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.store.tables import RequestRow
from support import ADMIN, EXAMPLE_TEXT, example_with_emergency

EMERGENCY = {"emergency": "on", "end": "1h", "param.ticket": "INC-42"}


def test_the_form_offers_the_emergency_checkbox_only_where_the_template_has_it(
    sign_in: SignIn, core: Core
) -> None:
    client = sign_in("member01")
    assert 'name="emergency"' not in client.get("/requests/new").text
    core.models.load(example_with_emergency(), "emergency.yaml", ADMIN)
    form = client.get("/requests/new").text
    assert 'name="emergency"' in form
    assert "For at most 1h, starting now." in form
    assert "Every approver and SecurityGroup is alerted" in form


def test_an_emergency_filed_in_the_browser_is_badged_and_reviewed(
    sign_in: SignIn, core: Core, clock: ManualClock
) -> None:
    # Reviewed within 30m, so that the review falls overdue while the sign-ins hold.
    text = example_with_emergency("{max_duration: 1h, review_within: 30m}")
    core.models.load(text, "emergency.yaml", ADMIN)
    member, leader = sign_in("member01"), sign_in("leader01")
    answer = file(member, **EMERGENCY)
    assert answer.status_code == 303, answer.text
    page = member.get("/requests/1").text
    assert "Emergency #1: succeeded; the approvers are alerted." in page
    assert '<span class="badge emergency"' in page
    assert "A post-incident review is due by" in page
    assert 'action="/requests/1/review"' not in page  # not the requester's to review
    assert '<span class="badge emergency"' in leader.get("/requests/all").text

    clock.advance(timedelta(minutes=31))
    shown = leader.get("/requests/1").text
    assert "Review overdue" in shown
    assert 'action="/requests/1/review"' in shown
    empty = post(leader, "/requests/1/review", "/requests/1", comment=" ")
    assert empty.status_code == 422
    assert "say what the review found" in errors_beside(empty.text, "review-errors")
    own = post(member, "/requests/1/review", "/requests/1", comment="fine")
    assert own.status_code == 403
    done = post(leader, "/requests/1/review", "/requests/1", comment="<b>justified</b>")
    assert done.status_code == 303
    reviewed = leader.get("/requests/1").text
    assert "You reviewed emergency #1." in reviewed
    assert "Reviewed by <strong>leader01</strong>" in reviewed
    assert "&lt;b&gt;justified&lt;/b&gt;" in reviewed  # someone's text, shown as text
    assert 'action="/requests/1/review"' not in reviewed


def test_a_bad_emergency_comes_back_beside_its_field_and_files_nothing(
    sign_in: SignIn, core: Core
) -> None:
    core.models.load(example_with_emergency(), "emergency.yaml", ADMIN)
    client = sign_in("member01")
    no_ticket = file(client, **{**EMERGENCY, "param.ticket": ""})
    assert no_ticket.status_code == 422
    assert "incident ticket" in errors_beside(no_ticket.text, "param-ticket-errors")
    too_long = file(client, **{**EMERGENCY, "end": "2h"})
    assert too_long.status_code == 422
    assert "grants at most 1h" in errors_beside(too_long.text, "end-errors")
    assert count(core, RequestRow) == 0


def test_the_audit_page_counts_emergency_use_per_person(sign_in: SignIn, core: Core) -> None:
    core.models.load(example_with_emergency(), "emergency.yaml", ADMIN)
    file(sign_in("member01"), **EMERGENCY)
    auditor: TestClient = sign_in("auditor01")
    page = auditor.get("/audit").text
    assert "Emergency use" in page
    assert 'href="/audit?user=member01&amp;action=request.emergency"' in page
    core.models.load(EXAMPLE_TEXT, "plain.yaml", ADMIN)
    assert "Emergency use" in auditor.get("/audit").text  # past use stays counted
