"""Which buttons a page shows. Hints only: the services decide, and refuse, regardless."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sekisho.domain.access import AccessModel, Template, TemplateAction
from sekisho.domain.actions import Action
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
    return RequestActions(
        decide=Action.APPROVE in view.allowed_actions,
        cancel=Action.CANCEL in view.allowed_actions,
        release=grant_releasable(user, view.grant),
        revoke=grant_revocable(user, view.grant),
    )


def grant_releasable(user: WebUser, grant: GrantView | None) -> bool:
    return grant is not None and Action.RELEASE in grant.allowed_actions


def grant_revocable(user: WebUser, grant: GrantView | None) -> bool:
    return grant is not None and Action.REVOKE in grant.allowed_actions


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
