"""What a request's messages say: approval needed, decided, closed, its runbook's result.

Each builder returns a `Notice`: the channel's message, and one per person concerned, worded
for their role (an approver asked to decide, the requester told, an approver whose decision
is no longer needed). Every message links to the request's page.
"""

from __future__ import annotations

from dataclasses import replace

from sekisho.domain.access import NotifyEvent, Template, TemplateAction
from sekisho.domain.emergency import ticket_of
from sekisho.domain.requests import RequestStatus
from sekisho.notify.message import Message, Notice
from sekisho.notify.routing import (
    ADMIN,
    APPROVER,
    HANDLED,
    REQUESTER,
    approvers_at,
    concerned,
    emergency_audience,
    roles,
    waiting_approvers,
)
from sekisho.notify.wording import Wording, clip
from sekisho.store.tables import RequestRow

NO_LONGER_NEEDED = "Your decision is no longer needed."


def approval_needed(
    w: Wording, row: RequestRow, template: Template, decided: frozenset[str]
) -> Notice:
    """The waiting level's approvers are asked to decide."""
    level = template.approval[row.level]
    approvers = waiting_approvers(w.model, template, row, decided)
    where = f"level {row.level + 1} of {len(template.approval)}"
    need = f"{level.min_approvals} approval(s) from {level.approvers}"
    title = f"Request #{row.id} needs approval: {w.short(row)}"
    summary = f"{w.who(row.requester)} {w.asks(row)}. It waits at {where}: {need}."
    review = f"Review request #{row.id}"
    mine = {
        user: w.message(
            row,
            f"Please review request #{row.id}: {w.short(row)}",
            f"{summary} You are one of its approvers.",
            APPROVER,
            link_label=review,
        )
        for user in approvers
    }
    broadcast = w.message(row, title, summary, "", link_label=review, recipients=roles(mine))
    # A chat app may offer Approve and Reject buttons on it (a step-up needs the web UI).
    chat = {"chat_approval": template.decided_in_chat}
    broadcast = replace(broadcast, data=broadcast.data | chat)
    return Notice(NotifyEvent.APPROVAL_NEEDED, row.template, row.id, None, broadcast, mine)


def decided(
    w: Wording,
    row: RequestRow,
    template: Template,
    decider: str,
    verb: str,  # approved | rejected
    comment: str,
    level: int,  # the level decided, 0-based
) -> Notice:
    """After a decision (the row already moved on): the requester hears of it; once the level
    is settled, so do its other approvers, whose decision is no longer needed."""
    settled = row.status != RequestStatus.PENDING_APPROVAL or row.level > level
    title, state = _decision_state(w, row, template, decider, verb, level, settled)
    said = f': "{clip(comment)}"' if comment else ""
    at = f"level {level + 1} of {len(template.approval)}"
    summary = f"{w.who(decider)} {verb} the request {w.about(row)} at {at}{said}. {state}"
    mine = {u: w.message(row, title, summary, REQUESTER) for u in concerned(row)}
    if settled:
        handled = f"Request #{row.id} was {verb} by {decider}: nothing for you to do"
        already = {d.approver for d in row.decisions} | {decider}
        for user in approvers_at(w.model, template, level):
            if user not in mine and user not in already:
                mine[user] = w.message(row, handled, f"{summary} {NO_LONGER_NEEDED}", HANDLED)
    broadcast = w.message(row, title, summary, "", recipients=roles(mine))
    broadcast.data.update({"decision": verb, "decided_by": decider, "level": level + 1})
    return Notice(NotifyEvent.REQUEST_DECIDED, row.template, row.id, None, broadcast, mine)


def _decision_state(
    w: Wording,
    row: RequestRow,
    template: Template,
    decider: str,
    verb: str,
    level: int,
    settled: bool,
) -> tuple[str, str]:
    """The decision's title, and where the request stands after it."""
    if verb == "rejected":
        return (
            f"Request #{row.id} rejected by {decider}",
            "The request is closed; no access is granted.",
        )
    if row.status == RequestStatus.APPROVED:
        state = "Every level approved: the runbook runs now, and you hear when access starts."
        if row.start_at is not None:
            state = f"Every level approved: access starts at {w.when(row.start_at)}."
        return f"Request #{row.id} approved by {decider}", state
    if settled:
        waiting = template.approval[row.level].approvers
        return (
            f"Request #{row.id}: level {level + 1} approved by {decider}",
            f"It now waits for level {row.level + 1} ({waiting}).",
        )
    at = f"level {level + 1} of {len(template.approval)}"
    count = sum(1 for d in row.decisions if d.level == level) + 1
    need = template.approval[level].min_approvals
    return (
        f"Request #{row.id}: {decider} approved ({count} of {need} at {at})",
        f"It needs {need - count} more approval(s) at {at}.",
    )


def closed(
    w: Wording, row: RequestRow, template: Template | None, how: str, why: str = ""
) -> Notice:
    """Cancelled by the requester, expired undecided, or closed by a lock (`why`: the lock's
    word): nobody needs to act any more."""
    decided_by = frozenset(d.approver for d in row.decisions)
    waiting = waiting_approvers(w.model, template, row, decided_by) if template else []
    if how == "cancelled":
        title = f"Request #{row.id} was cancelled by {row.requester}"
        summary = f"{w.who(row.requester)} cancelled the request {w.about(row)}."
        mine: dict[str, Message] = {}
    elif how == "locked":
        title = f"Request #{row.id} closed: {clip(why)}"
        summary = f"The request {w.about(row)} was closed without running: {clip(why)}."
        mine = {u: w.message(row, title, summary, REQUESTER) for u in concerned(row)}
    else:
        title = f"Request #{row.id} expired: nobody decided in time"
        summary = (
            f"Nobody decided the request {w.about(row)} by {w.when(row.decide_by)}; it is "
            "closed. File a new one if access is still needed."
        )
        mine = {u: w.message(row, title, summary, REQUESTER) for u in concerned(row)}
    for user in waiting:
        mine.setdefault(user, w.message(row, title, f"{summary} {NO_LONGER_NEEDED}", HANDLED))
    broadcast = w.message(row, title, summary, "", recipients=roles(mine))
    return Notice(NotifyEvent.REQUEST_DECIDED, row.template, row.id, None, broadcast, mine)


def runbook_finished(w: Wording, row: RequestRow, *, ok: bool, detail: str) -> Notice:
    """A remove request's result, or any failed runbook (a success that grants access is
    told as the grant's activation)."""
    removal = row.action == TemplateAction.REMOVE.value
    if ok:
        title = f"Request #{row.id} done: {row.subject} removed from {row.group_name}"
    elif removal:
        title = f"Request #{row.id}: access ended, removal not yet confirmed"
    else:
        title = f"Request #{row.id} failed: no access was granted"
    summary = f"The runbook for the request {w.about(row)} finished: {clip(detail)}."
    mine = {u: w.message(row, title, summary, REQUESTER) for u in concerned(row)}
    broadcast = w.message(row, title, summary, "", recipients=roles(mine))
    return Notice(NotifyEvent.RUNBOOK_FINISHED, row.template, row.id, None, broadcast, mine)


def emergency_used(w: Wording, row: RequestRow, template: Template) -> Notice:
    """Break-glass: the approvers and the `notify` groups hear that access was taken at once,
    and the approvers that a review of it is due."""
    ticket = ticket_of(template, row.params)
    title = f"EMERGENCY access #{row.id}: {w.short(row)}"
    summary = (
        f"{w.who(row.requester)} took emergency access to {row.group_name} {w.window(row)}, "
        f"without an approver (ticket {clip(ticket, 100)}): {clip(row.reason)}."
    )
    due = (
        f" A post-incident review is due by {w.when(row.review_due_at)}."
        if row.review_due_at
        else ""
    )
    people = emergency_audience(w.model, template, row)
    mine = {
        user: w.message(
            row,
            title,
            summary + (f"{due} You are one of its reviewers." if role == APPROVER else ""),
            role,
            link_label=f"Open emergency #{row.id}",
        )
        for user, role in people.items()
    }
    broadcast = w.message(row, title, summary + due, "", recipients=roles(mine))
    broadcast.data.update({"emergency": True, "ticket": ticket})
    return Notice(NotifyEvent.EMERGENCY_USED, row.template, row.id, None, broadcast, mine)


def review_overdue(w: Wording, row: RequestRow, template: Template) -> Notice:
    """An emergency's review is past due: the template's approvers and the admins, until done."""
    due = w.when(row.review_due_at) if row.review_due_at else "its due time"
    title = f"Emergency #{row.id} review overdue: {w.short(row)}"
    summary = (
        f"Nobody has reviewed the emergency access to {row.group_name} that "
        f"{w.who(row.requester)} took; the review was due by {due}. An approver of "
        f"{row.template} marks it reviewed with a comment."
    )
    people = {
        user: role
        for user, role in emergency_audience(w.model, template, row).items()
        if role == APPROVER
    }
    for admin in w.model.admins():
        people.setdefault(admin, ADMIN)
    mine = {
        user: w.message(row, title, summary, role, link_label=f"Review emergency #{row.id}")
        for user, role in people.items()
    }
    broadcast = w.message(row, title, summary, "", recipients=roles(mine))
    broadcast.data.update({"emergency": True, "review_due": due})
    return Notice(NotifyEvent.REVIEW_OVERDUE, row.template, row.id, None, broadcast, mine)
