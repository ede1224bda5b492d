"""What the services hand back: plain Pydantic views, shared by the API, the CLI and the web UI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from sekisho.domain import actions
from sekisho.domain.access import AccessModel
from sekisho.domain.actions import NONE, Action, Viewer, in_order
from sekisho.domain.emergency import review_overdue
from sekisho.domain.grants import is_active
from sekisho.domain.identity import LoginProof
from sekisho.domain.requests import RequestStatus
from sekisho.domain.step_up import StepUpAct
from sekisho.store import locks as stored_locks
from sekisho.store.grants import window
from sekisho.store.requests import recorded
from sekisho.store.tables import (
    AuditRow,
    DecisionRow,
    GrantRow,
    LockRow,
    RequestRow,
    TimelineRow,
)


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


# What the viewer may do next, by the rules the server applies when they try (sent in a
# fixed order, so answers compare equal).
AllowedActions = Annotated[
    frozenset[Action],
    PlainSerializer(in_order, return_type=list[Action]),
    Field(description="What the caller may do next; the server applies the same rules."),
]


class DecisionView(View):
    level: int  # 1-based, as people count
    approver: str
    decision: str
    comment: str
    at: datetime

    @classmethod
    def of(cls, row: DecisionRow) -> DecisionView:
        return cls(
            level=row.level + 1,
            approver=row.approver,
            decision=row.decision,
            comment=row.comment,
            at=row.decided_at,
        )


class LevelView(View):
    level: int
    approvers: str
    min_approvals: int
    approvals: int
    state: str  # waiting | approved | rejected | pending (not reached yet)


class TimelineView(View):
    at: datetime
    kind: str
    actor: str
    status: str
    message: str

    @classmethod
    def of(cls, row: TimelineRow) -> TimelineView:
        return cls(
            at=row.at, kind=row.kind, actor=row.actor, status=row.status, message=row.message
        )


class GrantView(View):
    id: int
    request_id: int
    user: str
    group: str
    start_at: datetime
    end_at: datetime
    status: str
    active: bool
    activated_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    ended_by: str | None
    end_note: str | None
    last_error: str | None
    allowed_actions: AllowedActions = NONE  # release, extend, revoke

    @classmethod
    def of(cls, row: GrantRow, now: datetime, viewer: Viewer | None = None) -> GrantView:
        """The grant as `viewer` sees it (no viewer: no actions offered)."""
        return cls(
            id=row.id,
            request_id=row.request_id,
            user=row.user,
            group=row.group_name,
            start_at=row.start_at,
            end_at=row.end_at,
            status=row.status,
            active=is_active(window(row), now),
            activated_at=row.activated_at,
            ended_at=row.ended_at,
            end_reason=row.end_reason,
            ended_by=row.ended_by,
            end_note=row.end_note,
            last_error=row.last_error,
            allowed_actions=grant_actions(viewer, row, now) if viewer else NONE,
        )


def grant_actions(viewer: Viewer, row: GrantRow, now: datetime) -> frozenset[Action]:
    return actions.on_grant(viewer, window(row), now)


class RequestSummary(View):
    id: int
    template: str
    action: str
    requester: str
    user: str
    group: str
    start_at: datetime | None
    end_at: datetime | None
    duration_seconds: int | None  # set while the end waits for the activation
    reason: str
    status: str
    created_at: datetime
    decide_by: datetime
    # Break-glass: granted at once without an approver; reviewed after the incident.
    emergency: bool = False
    review_due_at: datetime | None = None
    reviewed_at: datetime | None = None
    # An extension: the grant it asks more time for (`end_at` is the new end it asks for).
    extends_grant_id: int | None = None
    allowed_actions: AllowedActions = NONE  # approve, reject, cancel, review

    @classmethod
    def of(cls, row: RequestRow, allowed: frozenset[Action] = NONE) -> RequestSummary:
        return cls(**_summary_fields(row), allowed_actions=allowed)


def request_actions(
    viewer: Viewer, row: RequestRow, model: AccessModel, now: datetime
) -> frozenset[Action]:
    return actions.on_request(
        viewer,
        template=model.template(row.template),
        status=RequestStatus(row.status),
        level=row.level,
        decide_by=row.decide_by,
        requester=row.requester,
        subject=row.subject,
        decisions=[recorded(d) for d in row.decisions],
        now=now,
    ) | actions.on_emergency(
        viewer,
        emergency=row.emergency,
        template=model.template(row.template),
        requester=row.requester,
        subject=row.subject,
        reviewed_at=row.reviewed_at,
    )


def _summary_fields(row: RequestRow) -> dict[str, object]:
    return {
        "id": row.id,
        "template": row.template,
        "action": row.action,
        "requester": row.requester,
        "user": row.subject,
        "group": row.group_name,
        "start_at": row.start_at,
        "end_at": row.end_at,
        "duration_seconds": row.duration_s,
        "reason": row.reason,
        "status": row.status,
        "created_at": row.created_at,
        "decide_by": row.decide_by,
        "emergency": row.emergency,
        "review_due_at": row.review_due_at,
        "reviewed_at": row.reviewed_at,
        "extends_grant_id": row.extends_grant_id,
    }


class RequestView(RequestSummary):
    change_info: dict[str, str]
    params: dict[str, str]
    updated_at: datetime
    levels: list[LevelView]
    decisions: list[DecisionView]
    timeline: list[TimelineView]
    grant: GrantView | None
    # An extension: the grant it extends, as it stands now (None for any other request).
    extends: GrantView | None = None
    # What the template asks of an approver just before approving ("a passkey within the
    # last 5m"), or None: an approval without it is refused (403 step-up-required).
    approve_step_up: str | None = None
    reviewed_by: str | None = None
    review_comment: str | None = None
    review_overdue: bool = False  # an emergency past its review's due time, not reviewed

    @classmethod
    def build(
        cls,
        row: RequestRow,
        model: AccessModel,
        timeline: list[TimelineRow],
        grant: GrantRow | None,
        now: datetime,
        viewer: Viewer,
        extended: GrantRow | None = None,
    ) -> RequestView:
        """The request as `viewer` sees it now, with what they may do to it and its grant
        (an extension: with the grant it extends)."""
        return cls(
            **_summary_fields(row),
            allowed_actions=request_actions(viewer, row, model, now),
            change_info=row.change_info,
            params=row.params,
            updated_at=row.updated_at,
            levels=_levels(row, model),
            decisions=[DecisionView.of(d) for d in row.decisions],
            timeline=[TimelineView.of(t) for t in timeline],
            grant=GrantView.of(grant, now, viewer) if grant else None,
            extends=GrantView.of(extended, now) if extended else None,
            approve_step_up=_approve_step_up(model, row),
            reviewed_by=row.reviewed_by,
            review_comment=row.review_comment,
            review_overdue=review_overdue(row.review_due_at, row.reviewed_at, now),
        )


def _approve_step_up(model: AccessModel, row: RequestRow) -> str | None:
    template = model.template(row.template)
    rule = template.step_up_for(StepUpAct.APPROVE) if template is not None else None
    return rule.phrase if rule is not None else None


def _levels(row: RequestRow, model: AccessModel) -> list[LevelView]:
    template = model.template(row.template)
    if template is None:
        return []
    levels = []
    rejected = any(d.decision == "reject" for d in row.decisions)
    for index, level in enumerate(template.approval):
        approvals = sum(1 for d in row.decisions if d.level == index and d.decision == "approve")
        if approvals >= level.min_approvals:
            state = "approved"
        elif rejected and any(d.level == index and d.decision == "reject" for d in row.decisions):
            state = "rejected"
        elif index == row.level and row.status == "pending_approval":
            state = "waiting"
        else:
            state = "pending"
        levels.append(
            LevelView(
                level=index + 1,
                approvers=level.approvers,
                min_approvals=level.min_approvals,
                approvals=approvals,
                state=state,
            )
        )
    return levels


class EmergencyCount(View):
    """One person's emergency (break-glass) use, as auditors see it."""

    user: str
    uses: int
    reviewed: int
    awaiting_review: int  # not reviewed yet, due or not
    overdue: int  # past the review's due time and not reviewed
    last_used_at: datetime


class DirectoryView(View):
    """What the provider holds for a user: work-group memberships and TTL tags."""

    provider: str
    memberships: list[str]
    tags: dict[str, str]


class LockView(View):
    id: int
    kind: str  # user | target | group | role
    subject: str
    reason: str
    message: str  # what every refusal it causes says: "locked by admin01: laptop stolen"
    created_by: str
    created_at: datetime
    until: datetime | None  # None: until removed
    removed_at: datetime | None
    removed_by: str | None
    in_force: bool
    allowed_actions: AllowedActions = NONE  # unlock

    @classmethod
    def of(cls, row: LockRow, now: datetime, may_lock: bool = False) -> LockView:
        lock = stored_locks.value(row)
        in_force = row.removed_at is None and lock.in_force(now)
        return cls(
            id=row.id,
            kind=row.kind,
            subject=row.subject,
            reason=row.reason,
            message=lock.message,
            created_by=row.created_by,
            created_at=row.created_at,
            until=row.until,
            removed_at=row.removed_at,
            removed_by=row.removed_by,
            in_force=in_force,
            allowed_actions=frozenset({Action.UNLOCK}) if may_lock and in_force else NONE,
        )


class PlacedLockView(View):
    """A lock just placed, and what it ended at once."""

    lock: LockView
    tokens_revoked: int  # a locked user's logins
    requests_closed: list[int]
    grants_ended: list[int]  # the provider confirmed
    grants_pending: list[int]  # access is over; the provider is retried
    role_sessions: list[str]  # what was denied at AWS
    errors: list[str]  # what did not confirm yet


class SignedInView(View):
    """How the caller's login was proven, when the identity provider proved it."""

    via: str  # "oidc"
    auth_time: datetime | None
    amr: list[str]
    acr: str | None

    @classmethod
    def of(cls, proof: LoginProof) -> SignedInView:
        return cls(via=proof.method, auth_time=proof.auth_time, amr=list(proof.amr), acr=proof.acr)


class WhoAmI(View):
    user: str
    display_name: str
    email: str | None
    groups: list[str]  # standing groups
    admin: bool
    auditor: bool
    token_expires_at: datetime | None
    grants: list[GrantView]  # active now
    locks: list[LockView] = []  # in force on them, their groups, or what their groups reach
    directory: DirectoryView | None = None
    signed_in: SignedInView | None = None  # whoami only: how this login was proven


class AuditEntryView(View):
    """One audit entry as readers see it: its hash-covered fields and its hash, named one by
    one (an allow-list: a column added to the table is not shown until it is named here)."""

    seq: int
    at: datetime
    action: str
    outcome: str
    actor: str
    subject: str | None
    request_id: int | None
    grant_id: int | None
    object: str | None
    source: str
    detail: dict[str, Any]
    node: str | None  # the node that wrote it; None on entries from before nodes were named
    hash: str

    @classmethod
    def of(cls, row: AuditRow) -> AuditEntryView:
        return cls(
            seq=row.seq,
            at=row.at,
            action=row.action,
            outcome=row.outcome,
            actor=row.actor,
            subject=row.subject,
            request_id=row.request_id,
            grant_id=row.grant_id,
            object=row.object,
            source=row.source,
            detail=row.detail,
            node=row.node,
            hash=row.hash,
        )


class StreamDelivery(View):
    method: str  # urn:ietf:rfc:8935 (push)
    endpoint_url: str


class StreamView(View):
    """A push stream's configuration, as SSF 1.0 §8.1.1 words it (the bearer token it was
    given is never shown again)."""

    stream_id: str
    iss: str
    aud: str
    delivery: StreamDelivery
    events_supported: list[str]
    events_requested: list[str]
    events_delivered: list[str]
    description: str = ""
    created_by: str
    created_at: datetime


class StreamStatusView(View):
    stream_id: str
    status: str  # enabled (sekisho pushes every event the stream asked for)
