"""What a viewer may do next to a request or a grant. Pure: plain values in, names out.

Each action is the rule its operation enforces, asked ahead: `may_decide` is DecideRequest's
(`check_decidable`, `decide`), `may_cancel` CancelRequest's (`check_cancel`), `may_release`
and `may_revoke` ReleaseGrant's and RevokeGrant's, `may_extend` ExtendGrant's. Queries put
the result on their views, so a page's buttons, the API's `allowed_actions` and the CLI's
"you may" offer exactly what the server would allow, and the server still refuses the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sekisho.domain.access import Template
from sekisho.domain.emergency import may_review
from sekisho.domain.extensions import may_extend
from sekisho.domain.grants import GrantWindow, may_release, may_revoke
from sekisho.domain.requests import RecordedDecision, RequestStatus, may_cancel, may_decide


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    REVIEW = "review"  # an emergency's post-incident review
    RELEASE = "release"
    EXTEND = "extend"
    REVOKE = "revoke"
    UNLOCK = "unlock"


NONE: frozenset[Action] = frozenset()


def in_order(actions: Iterable[Action]) -> list[Action]:
    """The actions in the order people read them (approve before reject, ...)."""
    given = set(actions)
    return [action for action in Action if action in given]


@dataclass(frozen=True)
class Viewer:
    """Who is looking, as the rules see them."""

    name: str
    standing_groups: frozenset[str]
    admin: bool


def on_request(
    viewer: Viewer,
    *,
    template: Template | None,
    status: RequestStatus,
    level: int,
    decide_by: datetime,
    requester: str,
    subject: str,
    decisions: Sequence[RecordedDecision],
    now: datetime,
) -> frozenset[Action]:
    found: set[Action] = set()
    if may_decide(
        template=template,
        status=status,
        level=level,
        decide_by=decide_by,
        now=now,
        requester=requester,
        subject=subject,
        approver=viewer.name,
        approver_groups=viewer.standing_groups,
        decisions=decisions,
    ):
        found |= {Action.APPROVE, Action.REJECT}
    if may_cancel(canceller=viewer.name, requester=requester, status=status):
        found.add(Action.CANCEL)
    return frozenset(found)


def on_emergency(
    viewer: Viewer,
    *,
    emergency: bool,
    template: Template | None,
    requester: str,
    subject: str,
    reviewed_at: datetime | None,
) -> frozenset[Action]:
    """REVIEW when `viewer` may review this emergency now (ReviewEmergency's rule)."""
    allowed = may_review(
        emergency=emergency,
        template=template,
        requester=requester,
        subject=subject,
        reviewed_at=reviewed_at,
        reviewer=viewer.name,
        reviewer_groups=viewer.standing_groups,
    )
    return frozenset({Action.REVIEW}) if allowed else NONE


def on_grant(viewer: Viewer, grant: GrantWindow, now: datetime) -> frozenset[Action]:
    found: set[Action] = set()
    if may_release(grant, viewer.name, now):
        found.add(Action.RELEASE)
    if may_extend(grant, viewer.name, viewer.admin, now):
        found.add(Action.EXTEND)
    if may_revoke(grant, viewer.admin, now):
        found.add(Action.REVOKE)
    return frozenset(found)
