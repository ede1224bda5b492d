"""Separation of duties: who may decide, in which order, how many, and only once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from textwrap import dedent

import pytest
from flows import actions, audit_rows, can_assume, counts, file, kinds, load_model, refused
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.actor import Actor
from sekisho.domain.drafts import RequestDraft
from sekisho.domain.errors import (
    AlreadyDecided,
    Conflict,
    InvalidInput,
    NotApprover,
    NotFound,
    SekishoError,
    SelfApproval,
)
from sekisho.domain.requests import RequestStatus
from sekisho.providers.memory import MemoryProvider
from sekisho.queries.requests import RequestQuery
from sekisho.store.tables import DecisionRow, GrantRow
from support import ADMIN, AUDITOR, LEADER, LEADER2, MEMBER, MEMBER2

# Two levels, two approvals each: leads first, then heads.
TWO_LEVELS = dedent(
    """\
    version: 1
    settings:
      timezone: UTC
      approval_timeout: 1d
    accounts:
      - name: prod
        roles:
          - name: Admin
    users:
      - {name: dev01}
      - {name: lead01}
      - {name: lead02}
      - {name: lead03}
      - {name: head01}
      - {name: head02}
    groups:
      - name: Devs
        kind: standing
        members: [dev01]
      - name: Leads
        kind: standing
        members: [lead01, lead02, lead03]
        permissions: {approve: [Deploy]}
      - name: Heads
        kind: standing
        members: [head01, head02]
        permissions: {approve: [Deploy]}
      - name: ProdWork
        kind: work
        permissions: {assume: [prod/Admin]}
    templates:
      - name: Deploy
        action: grant
        max_duration: 4h
        eligibility:
          - {requesters: [Devs], groups: [ProdWork]}
        approval:
          - {approvers: Leads, min_approvals: 2}
          - {approvers: Heads, min_approvals: 2}
    """
)
DEV = Actor("dev01", "10.0.0.1")
LEAD1, LEAD2, LEAD3 = (Actor(f"lead0{n}", "10.0.0.2") for n in (1, 2, 3))
HEAD1, HEAD2 = (Actor(f"head0{n}", "10.0.0.3") for n in (1, 2))


def deploy(core: Core) -> int:
    load_model(core, TWO_LEVELS)
    draft = RequestDraft(template="Deploy", group="ProdWork", reason="deploy", duration="1h")
    return core.workflow.file(DEV, draft).id


def levels(core: Core, request_id: int) -> list[tuple[int, str]]:
    return [(lv.approvals, lv.state) for lv in core.workflow.get(DEV, request_id).levels]


def waiting_for(core: Core, approver: Actor) -> list[int]:
    return [r.id for r in core.workflow.list_requests(approver, RequestQuery(to_approve=True))]


# -- who may decide ---------------------------------------------------------------------------


def test_requester_may_not_approve_their_own_request(core: Core) -> None:
    """leader01 is an approver, but not of a request they filed."""
    request = file(core, LEADER)
    with refused(core, SelfApproval):
        core.workflow.approve(LEADER, request.id, "looks good to me")
    with refused(core, SelfApproval):
        core.workflow.reject(LEADER, request.id, "never mind")
    assert core.workflow.approve(LEADER2, request.id, "ok").status == RequestStatus.SUCCEEDED


def test_subject_may_not_approve_a_request_filed_for_them(core: Core) -> None:
    """An admin files for leader01: leader01 still may not approve their own access."""
    request = file(core, ADMIN, user="leader01")
    with refused(core, SelfApproval):
        core.workflow.approve(LEADER, request.id, "yes please")
    # The admin who filed it may not approve it either (and is no approver anyway).
    with refused(core, SelfApproval):
        core.workflow.approve(ADMIN, request.id, "filed and approved")
    assert core.workflow.approve(LEADER2, request.id, "ok").user == "leader01"


def test_a_member_approving_their_own_request_is_self_approval(core: Core) -> None:
    request = file(core, ADMIN, user="member01")
    with refused(core, SelfApproval):
        core.workflow.approve(MEMBER, request.id, "")


def test_non_approvers_are_refused(core: Core, provider: MemoryProvider) -> None:
    request = file(core)
    # The auditor may read the request but is not in ChangeApprovalGroup.
    with refused(core, NotApprover, match="ChangeApprovalGroup"):
        core.workflow.approve(AUDITOR, request.id, "")
    # Another member may not even see it.
    with refused(core, NotFound):
        core.workflow.approve(MEMBER2, request.id, "")
    with refused(core, NotFound):
        core.workflow.approve(LEADER, request.id + 100, "")
    assert core.workflow.get(MEMBER, request.id).status == RequestStatus.PENDING_APPROVAL
    assert provider.calls == []


def test_approving_twice_is_refused(core: Core) -> None:
    request_id = deploy(core)
    core.workflow.approve(LEAD1, request_id, "first")
    with refused(core, AlreadyDecided, match="lead01 already decided"):
        core.workflow.approve(LEAD1, request_id, "again")
    with refused(core, AlreadyDecided):
        core.workflow.reject(LEAD1, request_id, "changed my mind")
    assert levels(core, request_id) == [(1, "waiting"), (0, "pending")]


@pytest.mark.parametrize("end", ["approve", "reject", "cancel", "expire"])
def test_deciding_after_a_decision_is_a_conflict(core: Core, clock: ManualClock, end: str) -> None:
    request = file(core)
    if end == "approve":
        core.workflow.approve(LEADER, request.id, "ok")
    elif end == "reject":
        core.workflow.reject(LEADER, request.id, "not tonight")
    elif end == "cancel":
        core.workflow.cancel(MEMBER, request.id)
    else:
        clock.set(request.decide_by)
        assert core.sweeper.run_due().requests_expired == [request.id]
    with refused(core, AlreadyDecided):
        core.workflow.approve(LEADER2, request.id, "me too")
    with refused(core, Conflict):
        core.workflow.reject(LEADER2, request.id, "no")


# -- rejecting --------------------------------------------------------------------------------


def test_reject_requires_a_comment(core: Core) -> None:
    request = file(core)
    for comment in ("", "   \n "):
        with refused(core, InvalidInput) as caught:
            core.workflow.reject(LEADER, request.id, comment)
        assert [(p.field, p.rule) for p in caught.value.problems] == [("comment", "required")]
    assert core.workflow.get(MEMBER, request.id).status == RequestStatus.PENDING_APPROVAL


def test_one_rejection_ends_the_request(core: Core, provider: MemoryProvider) -> None:
    request = file(core)
    rejected = core.workflow.reject(LEADER, request.id, "no change freeze exception")
    assert rejected.status == RequestStatus.REJECTED
    assert rejected.grant is None
    assert rejected.timeline[-1].actor == "leader01"
    assert "no change freeze exception" in rejected.timeline[-1].message
    assert actions(core, request.id) == ["request.filed", "request.rejected"]
    assert audit_rows(core, request.id)[-1].detail["comment"] == "no change freeze exception"
    assert provider.calls == []
    assert not can_assume(core)
    # Rejected is final: the member files a new request instead.
    assert file(core).status == RequestStatus.PENDING_APPROVAL


def test_one_rejection_ends_a_multi_level_request(core: Core) -> None:
    request_id = deploy(core)
    core.workflow.approve(LEAD1, request_id, "")
    rejected = core.workflow.reject(LEAD2, request_id, "wrong window")
    assert rejected.status == RequestStatus.REJECTED
    assert [lv.state for lv in rejected.levels] == ["rejected", "pending"]
    with pytest.raises(AlreadyDecided):
        core.workflow.approve(LEAD3, request_id, "")
    with pytest.raises(AlreadyDecided):
        core.workflow.approve(HEAD1, request_id, "")


# -- levels and minimum approvals ------------------------------------------------------------


def test_levels_go_in_order_and_each_needs_its_minimum(
    core: Core, provider: MemoryProvider
) -> None:
    request_id = deploy(core)
    assert levels(core, request_id) == [(0, "waiting"), (0, "pending")]
    assert waiting_for(core, LEAD1) == [request_id]
    assert waiting_for(core, HEAD1) == []  # not their turn yet

    # Heads decide level 2 only; level 1 is the leads'.
    with refused(core, NotApprover, match="level 1 of Deploy"):
        core.workflow.approve(HEAD1, request_id, "skip ahead")

    core.workflow.approve(LEAD1, request_id, "one")
    assert levels(core, request_id) == [(1, "waiting"), (0, "pending")]
    assert core.workflow.get(DEV, request_id).status == RequestStatus.PENDING_APPROVAL

    assert waiting_for(core, LEAD1) == []  # decided already
    assert waiting_for(core, LEAD2) == [request_id]

    core.workflow.approve(LEAD2, request_id, "two")
    assert levels(core, request_id) == [(2, "approved"), (0, "waiting")]
    assert waiting_for(core, LEAD3) == []
    assert waiting_for(core, HEAD1) == [request_id]
    assert core.workflow.get(DEV, request_id).status == RequestStatus.PENDING_APPROVAL
    assert provider.calls == []

    # Level 1 is done: another lead is not an approver of level 2.
    with refused(core, NotApprover, match="level 2 of Deploy"):
        core.workflow.approve(LEAD3, request_id, "")

    core.workflow.approve(HEAD1, request_id, "three")
    assert core.workflow.get(DEV, request_id).status == RequestStatus.PENDING_APPROVAL
    assert not can_assume(core, "dev01", "prod/Admin")

    done = core.workflow.approve(HEAD2, request_id, "four")
    assert done.status == RequestStatus.SUCCEEDED
    assert levels(core, request_id) == [(2, "approved"), (2, "approved")]
    assert [(d.level, d.approver) for d in done.decisions] == [
        (1, "lead01"),
        (1, "lead02"),
        (2, "head01"),
        (2, "head02"),
    ]
    assert kinds(done).count("approved") == 5  # four people, then "all levels passed"
    assert can_assume(core, "dev01", "prod/Admin")
    assert provider.members("ProdWork") == {"dev01"}


def test_audit_names_the_level_each_approval_was_given_at(core: Core) -> None:
    request_id = deploy(core)
    for approver in (LEAD1, LEAD2, HEAD1, HEAD2):
        core.workflow.approve(approver, request_id, f"by {approver.name}")
    approvals = [r for r in audit_rows(core, request_id) if r.action == "request.approved"]
    assert [(r.actor, r.detail["level"]) for r in approvals] == [
        ("lead01", 1),
        ("lead02", 1),
        ("head01", 2),
        ("head02", 2),
    ]


def test_decisions_are_stored_once_per_person(core: Core) -> None:
    request = file(core)
    core.workflow.approve(LEADER, request.id, "fine")
    with core.db.read() as s:
        rows = list(s.scalars(select(DecisionRow).where(DecisionRow.request_id == request.id)))
    assert [(r.level, r.approver, r.decision, r.comment) for r in rows] == [
        (0, "leader01", "approve", "fine")
    ]
    # The database itself refuses a second decision by the same person.
    with pytest.raises(IntegrityError), core.db.write() as s:
        s.add(
            DecisionRow(
                request_id=request.id,
                level=0,
                approver="leader01",
                decision="approve",
                comment="again",
                decided_at=core.now(),
            )
        )


# -- concurrency ------------------------------------------------------------------------------


def race(*calls: Callable[[], object]) -> list[object]:
    """Run the calls at the same instant from separate threads; return results or errors."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # the loser's error is the result under test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


def test_two_approvers_at_once_one_wins(core: Core, provider: MemoryProvider) -> None:
    request = file(core)
    results = race(
        lambda: core.workflow.approve(LEADER, request.id, "from leader01"),
        lambda: core.workflow.approve(LEADER2, request.id, "from leader02"),
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], Conflict)
    assert isinstance(errors[0], SekishoError)
    assert "already" in errors[0].message

    final = core.workflow.get(MEMBER, request.id)
    assert final.status == RequestStatus.SUCCEEDED
    assert len(final.decisions) == 1
    assert kinds(final).count("approved") == 2  # one approval, one "all levels passed"
    assert kinds(final).count("runbook") == 1
    assert actions(core, request.id).count("request.approved") == 1
    assert actions(core, request.id).count("grant.activated") == 1
    with core.db.read() as s:
        assert s.scalar(select(func.count()).select_from(GrantRow)) == 1
    assert [c[0] for c in provider.calls] == ["add_member", "set_tag"]


def test_approve_and_cancel_at_once_one_wins(core: Core) -> None:
    request = file(core)
    before = counts(core)
    results = race(
        lambda: core.workflow.approve(LEADER, request.id, "go"),
        lambda: core.workflow.cancel(MEMBER, request.id),
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], Conflict)
    final = core.workflow.get(MEMBER, request.id).status
    if isinstance(results[0], Exception):
        assert final == RequestStatus.CANCELLED
        assert counts(core)["grants"] == before["grants"]
    else:
        assert final == RequestStatus.SUCCEEDED
        assert counts(core)["grants"] == before["grants"] + 1
