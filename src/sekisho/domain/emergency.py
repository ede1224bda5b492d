"""Emergency changes (break-glass): who may review one, and when its review is overdue. Pure.

An emergency request is granted at once, without an approver; the loud trail is what makes
that acceptable. One approver of the template (never the person who used it) reviews each
use after the incident, once, with a comment. `check_review` is the rule `ReviewEmergency`
enforces; `may_review` asks it ahead for the page's button and the API's `allowed_actions`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sekisho.domain.access import Template
from sekisho.domain.errors import Conflict, Forbidden, InvalidInput, NotApprover
from sekisho.domain.timespec import iso

# An overdue review is reported again this often until someone does it.
OVERDUE_REPEAT = timedelta(days=1)


class SelfReview(Forbidden):
    code = "self-review"
    title = "Nobody reviews their own emergency"


class AlreadyReviewed(Conflict):
    code = "already-reviewed"
    title = "Already reviewed"


def check_review(
    *,
    request_id: int,
    emergency: bool,
    template: Template | None,
    template_name: str,
    requester: str,
    subject: str,
    reviewed_by: str | None,
    reviewed_at: datetime | None,
    reviewer: str,
    reviewer_groups: frozenset[str],
) -> None:
    """Raise the error that stops `reviewer` reviewing this request, if any."""
    if not emergency:
        raise InvalidInput.one(
            "request_id",
            "not_emergency",
            f"request #{request_id} was not an emergency; only emergencies are reviewed",
        )
    if reviewed_at is not None:
        raise AlreadyReviewed(
            f"request #{request_id} was reviewed by {reviewed_by} at {iso(reviewed_at)}"
        )
    if reviewer in (requester, subject):
        raise SelfReview("nobody reviews an emergency they filed or that granted them access")
    approvers = {level.approvers for level in template.approval} if template else set()
    if not approvers & reviewer_groups:
        raise NotApprover(
            f"only an approver of {template_name} ({', '.join(sorted(approvers)) or 'none'}) "
            "reviews its emergencies"
        )


def may_review(
    *,
    emergency: bool,
    template: Template | None,
    requester: str,
    subject: str,
    reviewed_at: datetime | None,
    reviewer: str,
    reviewer_groups: frozenset[str],
) -> bool:
    """Whether `reviewer` may review now: `check_review`, asked ahead."""
    try:
        check_review(
            request_id=0,
            emergency=emergency,
            template=template,
            template_name="",
            requester=requester,
            subject=subject,
            reviewed_by=None,
            reviewed_at=reviewed_at,
            reviewer=reviewer,
            reviewer_groups=reviewer_groups,
        )
    except (InvalidInput, Forbidden, Conflict):
        return False
    return True


def review_overdue(
    review_due_at: datetime | None, reviewed_at: datetime | None, now: datetime
) -> bool:
    """An emergency whose review is past due and not done."""
    return review_due_at is not None and reviewed_at is None and now >= review_due_at


def ticket_of(template: Template | None, params: dict[str, str]) -> str:
    """The incident ticket an emergency request carries (in its template's ticket parameter)."""
    if template is None or template.emergency is None:
        return ""
    return params.get(template.emergency.ticket, "")
