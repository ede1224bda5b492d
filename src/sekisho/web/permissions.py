"""Which buttons a page shows. Hints only: the services decide, and refuse, regardless."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sekisho.domain.access import AccessModel, Template, TemplateAction
from sekisho.domain.requests import ApprovalDecision, RecordedDecision, RequestStatus, may_decide
from sekisho.services.views import GrantView, RequestView
from sekisho.web.session import WebUser


@dataclass(frozen=True)
class RequestActions:
    decide: bool  # approve or reject the waiting level
    cancel: bool
    release: bool  # the holder ends their own access
    revoke: bool  # an admin ends it

    @property
    def any(self) -> bool:
        return self.decide or self.cancel or self.release or self.revoke


def request_actions(
    user: WebUser, view: RequestView, template: Template | None, now: datetime
) -> RequestActions:
    pending = view.status == RequestStatus.PENDING_APPROVAL and now < view.decide_by
    return RequestActions(
        decide=pending and _may_decide(user, view, template),
        cancel=pending and user.name == view.requester,
        release=grant_releasable(user, view.grant),
        revoke=grant_revocable(user, view.grant),
    )


def _may_decide(user: WebUser, view: RequestView, template: Template | None) -> bool:
    """The workflow's own rule (`domain.requests.decide`), on what the page shows."""
    waiting = next((level for level in view.levels if level.state == "waiting"), None)
    if template is None or waiting is None or waiting.level > len(template.approval):
        return False  # nothing waits, or the template changed: the workflow refuses
    decisions = [
        RecordedDecision(d.level - 1, d.approver, ApprovalDecision(d.decision), d.comment, d.at)
        for d in view.decisions
    ]
    return may_decide(
        template=template,
        status=RequestStatus(view.status),
        level=waiting.level - 1,  # LevelView counts from 1
        requester=view.requester,
        subject=view.user,
        approver=user.name,
        approver_groups=user.standing_groups,
        decisions=decisions,
    )


def grant_releasable(user: WebUser, grant: GrantView | None) -> bool:
    return grant is not None and grant.active and grant.user == user.name


def grant_revocable(user: WebUser, grant: GrantView | None) -> bool:
    return grant is not None and grant.active and user.admin


def requestable(model: AccessModel, user: WebUser) -> list[tuple[Template, list[str]]]:
    """Templates this user may file, each with the work groups they may ask for.

    The same eligibility rule `core.workflow.file` applies (the template's requestable groups
    for the user's standing groups), so the form offers nothing the service would refuse.
    """
    found = []
    for template in model.templates:
        groups = sorted(template.requestable_groups(user.standing_groups))
        if groups:
            found.append((template, groups))
    return found


def is_removal(template: Template) -> bool:
    return template.action is TemplateAction.REMOVE
