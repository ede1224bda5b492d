"""The seed's scenario end to end, and the ways a person says when access should end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flows import (
    EXAMPLE_TEXT,
    PROD_MEMBER_ROLE,
    WORK,
    actions,
    can_assume,
    file,
    granted,
    kinds,
    load_model,
)

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.access import Verb
from sekisho.domain.errors import Conflict, Forbidden, NotFound
from sekisho.domain.requests import RequestStatus
from sekisho.providers.memory import MemoryProvider
from sekisho.queries.requests import RequestQuery
from sekisho.services.audit import AuditFilter
from support import ADMIN, AUDITOR, LEADER, LEADER2, MEMBER, MEMBER2

# The ManualClock starts at 2026-11-29 09:00 UTC, which is 18:00 in Asia/Tokyo (the model's zone).
START = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
END = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)  # 20:00 in Tokyo


@pytest.mark.parametrize(
    "when",
    [
        {"until": "202611292000"},  # the seed's TTL form, read in Asia/Tokyo
        {"until": "2026-11-29T20:00"},  # ISO 8601 without an offset: the model's zone too
        {"until": "2026-11-29T20:00:00+09:00"},
        {"until": "2026-11-29T11:00:00Z"},
        {"start": "2026-11-29T09:30:00Z", "duration": "1h30m"},
        {"start": "2026-11-29T09:30:00Z", "duration": "90m"},
    ],
    ids=["seed-ttl", "iso-local", "iso-offset", "iso-z", "start-for", "start-for-minutes"],
)
def test_every_way_of_saying_the_end_means_the_same_instant(
    core: Core, when: dict[str, str]
) -> None:
    fields: dict[str, object] = {"duration": None, **when}
    request = file(core, **fields)
    assert request.end_at == END
    assert request.start_at == (START + timedelta(minutes=30) if "start" in when else None)
    assert request.status == RequestStatus.PENDING_APPROVAL
    assert request.timeline[0].message == f"filed: member01 in {WORK} until 2026-11-29T11:00:00Z"


@pytest.mark.parametrize("duration", ["2h30m", "150m", "2h30m0s"])
def test_a_duration_without_a_start_counts_from_the_approval(
    core: Core, clock: ManualClock, duration: str
) -> None:
    request = file(core, duration=duration)
    assert request.end_at is None
    assert request.duration_seconds == 9000
    assert request.timeline[0].message == f"filed: member01 in {WORK} for 2h30m after approval"
    clock.advance(timedelta(minutes=10))
    done = core.workflow.approve(LEADER, request.id, "ok")
    assert done.end_at == START + timedelta(minutes=10, hours=2, seconds=1800)


def test_the_seed_scenario(core: Core, clock: ManualClock, provider: MemoryProvider) -> None:
    # member01 cannot switch into the production member role: only the work group may.
    denied = core.authz.check(MEMBER, "member01", Verb.ASSUME, PROD_MEMBER_ROLE)
    assert not denied.allowed
    assert "AddUserToGroup for ProdMemberWorkGroup" in denied.reason

    # They ask to join the work group until 20:00 Tokyo time, as the seed's TTL tag says it.
    request = file(core, duration=None, until="202611292000")
    assert request.status == RequestStatus.PENDING_APPROVAL
    assert request.requester == request.user == "member01"
    assert request.change_info["rollback"] == "restore the previous key"
    assert not can_assume(core)

    # The leader sees it waiting for them, and approves with a comment.
    waiting = core.workflow.list_requests(LEADER, RequestQuery(to_approve=True))
    assert [r.id for r in waiting] == [request.id]
    done = core.workflow.approve(LEADER, request.id, "OK for tonight's maintenance")
    assert done.status == RequestStatus.SUCCEEDED
    assert core.workflow.list_requests(LEADER, RequestQuery(to_approve=True)) == []

    # The timeline tells it step by step, naming the approver and their comment.
    assert kinds(done) == [
        "filed",
        "approved",
        "approved",
        "runbook",
        "step:add_user_to_group",
        "step:tag_user",
        "succeeded",
    ]
    decision = done.timeline[1]
    assert decision.actor == "leader01"
    assert "OK for tonight's maintenance" in decision.message
    assert [(d.approver, d.decision, d.comment) for d in done.decisions] == [
        ("leader01", "approve", "OK for tonight's maintenance")
    ]
    steps = [t for t in done.timeline if t.kind.startswith("step:")]
    assert all(t.status == "ok" for t in steps)
    assert "added member01 to ProdMemberWorkGroup" in steps[0].message

    # Now member01 can, and the decision names the grant that allows it.
    assert done.grant is not None
    grant = done.grant
    assert (grant.status, grant.active, grant.end_at) == ("active", True, END)
    allowed = core.authz.check(MEMBER, "member01", Verb.ASSUME, PROD_MEMBER_ROLE)
    assert allowed.allowed
    assert allowed.grant_id == grant.id
    assert allowed.grant_end == END
    assert f"#{grant.id}" in allowed.reason
    assert core.authz.check(MEMBER, "member01", Verb.CONNECT, "prod-admin-console").allowed

    # The provider holds the membership and the seed's TTL tag.
    assert provider.members(WORK) == {"member01"}
    assert provider.tags("member01") == {WORK: "2026-11-29T11:00:00Z"}
    assert [g.id for g in core.identity.whoami(MEMBER).grants] == [grant.id]

    # At the end time the grant ends by itself.
    assert core.sweeper.next_deadline() == END
    clock.set(END - timedelta(seconds=1))
    assert core.sweeper.run_due().expired == []
    assert can_assume(core)
    clock.set(END)
    assert core.sweeper.run_due().expired == [grant.id]
    assert provider.members(WORK) == frozenset()
    assert provider.tags("member01") == {}
    assert not core.authz.check(MEMBER, "member01", Verb.ASSUME, PROD_MEMBER_ROLE).allowed
    assert core.identity.whoami(MEMBER).grants == []

    after = core.workflow.get(MEMBER, request.id)
    assert after.grant is not None
    assert (after.grant.status, after.grant.active, after.grant.end_reason) == (
        "expired",
        False,
        "expired",
    )
    assert after.grant.ended_at == END
    assert kinds(after)[-4:] == [
        "grant.ending",
        "step:remove_user_from_group",
        "step:untag_user",
        "grant.ended",
    ]

    # The audit trail tells the whole story, and its chain is intact.
    assert actions(core, request.id) == [
        "request.filed",
        "request.approved",
        "grant.activated",
        "request.succeeded",
        "grant.expired",
    ]
    story = core.audit_trail.list_entries(AUDITOR, AuditFilter(user="member01", limit=1000))
    assert [e.action for e in reversed(story)] == [
        "authz.denied",
        "request.filed",
        "request.approved",
        "grant.activated",
        "request.succeeded",
        "grant.expired",
        "authz.denied",
    ]
    approved = next(e for e in story if e.action == "request.approved")
    assert (approved.actor, approved.subject, approved.source) == (
        "leader01",
        "member01",
        LEADER.source,
    )
    assert approved.detail["comment"] == "OK for tonight's maintenance"
    expired = next(e for e in story if e.action == "grant.expired")
    assert expired.actor == "sekisho:scheduler"
    assert expired.at == END
    report = core.audit_trail.verify(AUDITOR)
    assert report.ok, report.problems
    assert report.entries == len(actions(core))


def test_an_approval_after_the_deadline_is_refused_even_before_a_sweep(
    core: Core, clock: ManualClock
) -> None:
    """An approval arriving after the request's deadline is a conflict, even before a sweep."""
    request = file(core)
    clock.set(request.decide_by)
    with pytest.raises(Conflict, match="expired undecided"):
        core.workflow.approve(LEADER, request.id, "too late")
    assert core.workflow.get(MEMBER, request.id).status == RequestStatus.PENDING_APPROVAL


def test_requester_cancels_while_pending(core: Core, provider: MemoryProvider) -> None:
    request = file(core)
    with pytest.raises(Forbidden):
        core.workflow.cancel(LEADER, request.id)
    cancelled = core.workflow.cancel(MEMBER, request.id)
    assert cancelled.status == RequestStatus.CANCELLED
    assert kinds(cancelled)[-1] == "cancelled"
    assert actions(core, request.id)[-1] == "request.cancelled"
    with pytest.raises(Conflict):
        core.workflow.cancel(MEMBER, request.id)
    with pytest.raises(Conflict):
        core.workflow.approve(LEADER, request.id, "")
    assert provider.calls == []


def test_an_approved_request_cannot_be_cancelled(core: Core) -> None:
    request = granted(core)
    with pytest.raises(Conflict):
        core.workflow.cancel(MEMBER, request.id)


def test_one_open_request_per_user_and_group(core: Core) -> None:
    first = file(core)
    with pytest.raises(Conflict, match=f"#{first.id}"):
        file(core)
    # Someone else may ask for the same group.
    assert file(core, MEMBER2).status == RequestStatus.PENDING_APPROVAL


def test_admin_files_on_behalf_of_someone(core: Core) -> None:
    request = file(core, ADMIN, user="member01")
    assert (request.requester, request.user) == ("admin01", "member01")
    done = core.workflow.approve(LEADER2, request.id, "fine")
    assert done.grant is not None
    assert done.grant.user == "member01"
    assert can_assume(core, "member01")
    # Both the subject and the requester see it as theirs.
    assert [r.id for r in core.workflow.list_requests(MEMBER, RequestQuery(mine=True))] == [
        request.id
    ]
    assert [r.id for r in core.workflow.list_requests(ADMIN, RequestQuery(mine=True))] == [
        request.id
    ]


def test_requests_are_visible_only_to_those_involved(core: Core) -> None:
    request = file(core)
    for who in (MEMBER, LEADER, AUDITOR, ADMIN):
        assert core.workflow.get(who, request.id).id == request.id
    with pytest.raises(NotFound):
        core.workflow.get(MEMBER2, request.id)
    assert core.workflow.list_requests(MEMBER2, RequestQuery()) == []
    assert [r.id for r in core.workflow.list_requests(AUDITOR, RequestQuery())] == [request.id]


def test_auto_approved_template_runs_at_once(core: Core, provider: MemoryProvider) -> None:
    load_model(core, EXAMPLE_TEXT.replace("auto_approve: false", "auto_approve: true"))
    request = file(core)
    assert request.status == RequestStatus.SUCCEEDED
    assert request.timeline[1].message == "auto-approved by template"
    assert request.decisions == []
    assert can_assume(core)
    assert provider.members(WORK) == {"member01"}
    assert actions(core, request.id)[:2] == ["request.filed", "request.approved"]
