"""Which buttons a page shows. Hints only: the services decide, and refuse, regardless."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sekisho.domain.access import AccessModel, Template, TemplateAction
from sekisho.domain.requests import RequestStatus
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


def request_actions(user: WebUser, view: RequestView, now: datetime) -> RequestActions:
    pending = view.status == RequestStatus.PENDING_APPROVAL and now < view.decide_by
    waiting = next((level for level in view.levels if level.state == "waiting"), None)
    decided = {d.approver for d in view.decisions}
    decide = (
        pending
        and waiting is not None
        and waiting.approvers in user.standing_groups
        and user.name not in (view.requester, view.user)  # nobody approves their own
        and user.name not in decided
    )
    return RequestActions(
        decide=decide,
        cancel=pending and user.name == view.requester,
        release=grant_releasable(user, view.grant),
        revoke=grant_revocable(user, view.grant),
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
