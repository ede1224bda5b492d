"""The request state machine and the approval rules. Pure: no storage, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sekisho.domain.access import Template
from sekisho.domain.errors import AlreadyDecided, Conflict, Forbidden, NotApprover, SelfApproval
from sekisho.domain.timespec import iso


class RequestStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SCHEDULED = "scheduled"  # approved; waits for its start time
    IN_PROGRESS = "in_progress"  # the runbook is running
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED_UNAPPROVED = "expired_unapproved"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {
        RequestStatus.SUCCEEDED,
        RequestStatus.FAILED,
        RequestStatus.REJECTED,
        RequestStatus.CANCELLED,
        RequestStatus.EXPIRED_UNAPPROVED,
    }
)

_S = RequestStatus
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    _S.PENDING_APPROVAL: frozenset({_S.APPROVED, _S.REJECTED, _S.CANCELLED, _S.EXPIRED_UNAPPROVED}),
    # APPROVED -> SUCCEEDED: an extension, whose approval moves its grant's end at once.
    _S.APPROVED: frozenset({_S.SCHEDULED, _S.IN_PROGRESS, _S.SUCCEEDED, _S.FAILED}),
    _S.SCHEDULED: frozenset({_S.IN_PROGRESS, _S.FAILED}),
    # IN_PROGRESS -> IN_PROGRESS: a runbook resumed after a crash.
    _S.IN_PROGRESS: frozenset({_S.IN_PROGRESS, _S.SUCCEEDED, _S.FAILED}),
}


def check_transition(current: RequestStatus, new: RequestStatus) -> None:
    if new not in TRANSITIONS.get(current, frozenset()):
        raise Conflict(f"a request that is {current.value} cannot become {new.value}")


class ApprovalDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True)
class RecordedDecision:
    level: int
    approver: str
    decision: ApprovalDecision
    comment: str
    at: datetime


@dataclass(frozen=True)
class DecisionOutcome:
    """What one decision does to a request."""

    new_status: RequestStatus
    new_level: int  # the level waiting for approvals after this decision
    level_complete: bool


def approvals_at(level: int, decisions: Sequence[RecordedDecision]) -> int:
    return sum(1 for d in decisions if d.level == level and d.decision is ApprovalDecision.APPROVE)


def check_decidable(
    *,
    request_id: int,
    template_name: str,
    template: Template | None,
    status: RequestStatus,
    level: int,
    decide_by: datetime,
    now: datetime,
) -> Template:
    """The request can take a decision at all: its template still has the level that waits,
    and its deadline has not passed. Returns the template whose level is decided."""
    if template is None or level >= len(template.approval):
        raise Conflict(f"template {template_name} changed; the request cannot be decided")
    if status is RequestStatus.PENDING_APPROVAL and now >= decide_by:
        raise Conflict(f"request #{request_id} expired undecided at {iso(decide_by)}")
    return template


def may_decide(
    *,
    template: Template | None,
    status: RequestStatus,
    level: int,
    decide_by: datetime,
    now: datetime,
    requester: str,
    subject: str,
    approver: str,
    approver_groups: frozenset[str],
    decisions: Sequence[RecordedDecision],
) -> bool:
    """Whether `approver` may approve or reject now: `check_decidable` and `decide`, asked
    ahead (for a page's buttons, the API's `allowed_actions`, the "waiting for me" list).
    Reject and approve share every rule but the outcome (a rejection's comment is input)."""
    try:
        found = check_decidable(
            request_id=0,
            template_name="",
            template=template,
            status=status,
            level=level,
            decide_by=decide_by,
            now=now,
        )
        decide(
            template=found,
            status=status,
            level=level,
            requester=requester,
            subject=subject,
            approver=approver,
            approver_groups=approver_groups,
            decisions=decisions,
            decision=ApprovalDecision.APPROVE,
        )
    except (Conflict, Forbidden):
        return False
    return True


def decide(
    *,
    template: Template,
    status: RequestStatus,
    level: int,
    requester: str,
    subject: str,
    approver: str,
    approver_groups: frozenset[str],
    decisions: Sequence[RecordedDecision],
    decision: ApprovalDecision,
) -> DecisionOutcome:
    """Apply one approver's decision, enforcing separation of duties.

    Nobody decides a request that they filed or that grants them access; the approver must be
    in the current level's group; each person decides once; levels go in order; one rejection
    ends the request.
    """
    if status is not RequestStatus.PENDING_APPROVAL:
        raise AlreadyDecided(f"the request is already {status.value}; it takes no more decisions")
    if approver in (requester, subject):
        raise SelfApproval("nobody approves or rejects a request they filed or that grants them")
    earlier = next((d for d in decisions if d.approver == approver), None)
    if earlier is not None:
        raise AlreadyDecided(
            f"{approver} already decided ({earlier.decision.value}) at level {earlier.level + 1}"
        )
    current = template.approval[level]
    if current.approvers not in approver_groups:
        raise NotApprover(
            f"level {level + 1} of {template.name} is decided by members of {current.approvers}"
        )
    if decision is ApprovalDecision.REJECT:
        return DecisionOutcome(RequestStatus.REJECTED, level, level_complete=False)
    if approvals_at(level, decisions) + 1 < current.min_approvals:
        return DecisionOutcome(RequestStatus.PENDING_APPROVAL, level, level_complete=False)
    if level + 1 < len(template.approval):
        return DecisionOutcome(RequestStatus.PENDING_APPROVAL, level + 1, level_complete=True)
    return DecisionOutcome(RequestStatus.APPROVED, level, level_complete=True)


def pass_level(template: Template, level: int) -> DecisionOutcome:
    """A level that passes by itself (its requester is on call): the next level waits, or,
    after the last, the request is approved."""
    if level + 1 < len(template.approval):
        return DecisionOutcome(RequestStatus.PENDING_APPROVAL, level + 1, level_complete=True)
    return DecisionOutcome(RequestStatus.APPROVED, level, level_complete=True)


def check_cancel(*, request_id: int, canceller: str, requester: str, status: RequestStatus) -> None:
    """Only the requester withdraws a request, and only while nobody has decided it."""
    if canceller != requester:
        raise Forbidden("only the requester may cancel a request")
    if status is not RequestStatus.PENDING_APPROVAL:
        raise Conflict(f"request #{request_id} is {status.value}; only pending ones cancel")


def may_cancel(*, canceller: str, requester: str, status: RequestStatus) -> bool:
    """`check_cancel`, asked ahead."""
    try:
        check_cancel(request_id=0, canceller=canceller, requester=requester, status=status)
    except (Conflict, Forbidden):
        return False
    return True
