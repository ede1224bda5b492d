"""Emergency changes: break-glass access granted at once with a reason and a ticket, a loud
trail (timeline, audit, alerts), a post-incident review by an approver, overdue reviews
reported until done, and the use counted per person for auditors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flows import (
    EXAMPLE_TEXT,
    WORK,
    actions,
    audit_rows,
    can_assume,
    file,
    granted,
    invalid,
    load_model,
    refused,
)

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.actions import Action
from sekisho.domain.emergency import AlreadyReviewed, SelfReview
from sekisho.domain.errors import Forbidden, Locked, NotApprover, NotEligible
from sekisho.domain.requests import RequestStatus
from sekisho.queries.requests import RequestQuery
from support import ADMIN, AUDITOR, LEADER, LEADER2, MEMBER, MEMBER2, example_with_emergency

TICKET = {"ticket": "INC-42"}


@pytest.fixture(autouse=True)
def emergency_model(core: Core) -> None:
    load_model(core, example_with_emergency())


def emergency(core: Core, actor=MEMBER, **overrides: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {"emergency": True, "params": TICKET, "duration": "1h"}
    return file(core, actor, **{**fields, **overrides})


def test_an_emergency_grants_at_once_without_an_approver(core: Core) -> None:
    request = emergency(core)
    assert request.status == RequestStatus.SUCCEEDED
    assert request.emergency is True
    assert can_assume(core)
    assert [d.approver for d in request.decisions] == []
    assert "emergency" in [t.kind for t in request.timeline]
    [row] = [t for t in request.timeline if t.kind == "emergency"]
    assert "without an approver (ticket INC-42)" in row.message
    assert "review due by 2026-11-30T09:00:00Z" in row.message


def test_the_audit_trail_says_emergency_on_every_request_entry(core: Core) -> None:
    request = emergency(core)
    assert actions(core, request.id)[:2] == ["request.filed", "request.emergency"]
    rows = audit_rows(core, request.id)
    assert all(r.detail.get("emergency") is True for r in rows if r.action.startswith("request."))
    [used] = [r for r in rows if r.action == "request.emergency"]
    assert used.actor == "member01"
    assert used.detail["ticket"] == "INC-42"
    assert used.detail["review_due"] == "2026-11-30T09:00:00Z"
    ordinary = granted(core, MEMBER2)
    assert "emergency" not in audit_rows(core, ordinary.id)[0].detail


def test_an_emergency_asks_no_approver_to_decide(core: Core) -> None:
    emergency(core)
    waiting = core.workflow.list_requests(LEADER, RequestQuery(to_approve=True))
    assert waiting == []


def test_a_template_without_emergency_refuses_it(core: Core) -> None:
    load_model(core, EXAMPLE_TEXT)
    with invalid(core, "emergency", "no_emergency"):
        emergency(core)


def test_an_emergency_needs_a_reason(core: Core) -> None:
    with invalid(core, "reason", "required"):
        emergency(core, reason="  ")


def test_an_emergency_needs_its_ticket(core: Core) -> None:
    with invalid(core, "param.ticket", "required"):
        emergency(core, params={})


def test_the_ticket_must_match_its_pattern(core: Core) -> None:
    with invalid(core, "param.ticket", "pattern"):
        emergency(core, params={"ticket": "whatever"})


def test_an_emergency_lasts_at_most_its_max_duration(core: Core) -> None:
    with invalid(core, "for", "max_duration") as caught:
        emergency(core, duration="2h")
    assert "an emergency with AddUserToGroup grants at most 1h" in str(caught.value)


def test_an_emergency_starts_now(core: Core) -> None:
    with invalid(core, "start", "not_applicable"):
        emergency(core, start="2026-11-29T10:00:00Z")


def test_an_emergency_is_only_for_an_eligible_requester(core: Core) -> None:
    with refused(core, NotEligible):
        emergency(core, group="ProdLeaderWorkGroup")


def test_an_emergency_is_only_for_oneself(core: Core) -> None:
    with refused(core, Forbidden, "nobody else"):
        emergency(core, ADMIN, user="member01")


def test_a_locked_user_gets_no_emergency(core: Core) -> None:
    core.locks.place(ADMIN, "user", "member01", "laptop stolen")
    with refused(core, Locked, "laptop stolen"):
        emergency(core)


def test_an_approver_reviews_an_emergency_once(core: Core, clock: ManualClock) -> None:
    request = emergency(core)
    assert Action.REVIEW in core.workflow.get(LEADER, request.id).allowed_actions
    assert Action.REVIEW not in request.allowed_actions  # the requester's own view
    clock.advance(timedelta(hours=3))
    reviewed = core.workflow.review(LEADER, request.id, "DB failover, access was justified")
    assert reviewed.reviewed_by == "leader01"
    assert reviewed.review_comment == "DB failover, access was justified"
    assert reviewed.reviewed_at == clock.now()
    assert Action.REVIEW not in reviewed.allowed_actions
    assert reviewed.timeline[-1].message == "emergency reviewed: DB failover, access was justified"
    assert actions(core, request.id)[-1] == "request.reviewed"
    with refused(core, AlreadyReviewed, "reviewed by leader01"):
        core.workflow.review(LEADER2, request.id, "me too")


def test_nobody_reviews_their_own_emergency(core: Core) -> None:
    request = emergency(core)
    with refused(core, SelfReview):
        core.workflow.review(MEMBER, request.id, "all fine")


def test_only_an_approver_of_the_template_reviews(core: Core) -> None:
    request = emergency(core)
    with refused(core, NotApprover, "ChangeApprovalGroup"):
        core.workflow.review(AUDITOR, request.id, "all fine")


def test_a_review_needs_a_comment(core: Core) -> None:
    request = emergency(core)
    with invalid(core, "comment", "required"):
        core.workflow.review(LEADER, request.id, " ")


def test_an_ordinary_request_is_not_reviewed(core: Core) -> None:
    request = granted(core)
    with invalid(core, "request_id", "not_emergency"):
        core.workflow.review(LEADER2, request.id, "all fine")


def test_an_overdue_review_is_reported_daily_until_done(core: Core, clock: ManualClock) -> None:
    request = emergency(core)
    clock.advance(timedelta(hours=23))
    assert core.sweeper.run_due().reviews_overdue == []
    assert core.workflow.get(LEADER, request.id).review_overdue is False
    assert core.sweeper.next_deadline() == clock.now() + timedelta(hours=1)
    clock.advance(timedelta(hours=1))
    assert core.sweeper.run_due().reviews_overdue == [request.id]
    assert core.sweeper.run_due().reviews_overdue == []  # once per day, not once per pass
    view = core.workflow.get(LEADER, request.id)
    assert view.review_overdue is True
    assert view.timeline[-1].message == "emergency review overdue since 2026-11-30T09:00:00Z"
    clock.advance(timedelta(days=1))
    assert core.sweeper.run_due().reviews_overdue == [request.id]
    assert actions(core, request.id).count("request.review_overdue") == 2
    core.workflow.review(LEADER, request.id, "late, but justified")
    clock.advance(timedelta(days=3))
    assert core.sweeper.run_due().reviews_overdue == []
    assert core.workflow.get(LEADER, request.id).review_overdue is False


def test_auditors_see_emergency_use_per_person(core: Core, clock: ManualClock) -> None:
    first = emergency(core)
    core.workflow.review(LEADER, first.id, "ok")
    core.grants.release(MEMBER, first.grant.id)  # type: ignore[union-attr]
    emergency(core)
    emergency(core, LEADER, group=WORK)
    clock.advance(timedelta(days=2))
    counts = core.workflow.emergencies(AUDITOR)
    assert [(c.user, c.uses, c.reviewed, c.awaiting_review, c.overdue) for c in counts] == [
        ("member01", 2, 1, 1, 1),
        ("leader01", 1, 0, 1, 1),
    ]
    listed = core.workflow.list_requests(AUDITOR, RequestQuery(emergency=True))
    assert [r.emergency for r in listed] == [True, True, True]
    with pytest.raises(Forbidden):
        core.workflow.emergencies(MEMBER)
