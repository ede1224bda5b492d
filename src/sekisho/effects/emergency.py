"""What an emergency's events leave behind: a loud timeline, audit entries and alerts.

An emergency grant has no approver, so its trail says so everywhere: the timeline's
"emergency" row, a `request.emergency` audit entry (and `emergency: true` on every entry of
the request), an `emergency.used` alert to every approver and the `notify` groups, and, once
its review is past due, `emergency.review_overdue` until an approver reviews it.
"""

from __future__ import annotations

from sekisho.domain.events import EmergencyReviewed, EmergencyReviewsOverdue, EmergencyUsed
from sekisho.domain.timespec import iso
from sekisho.effects.context import EffectContext, Handler
from sekisho.effects.notify import QUEUED
from sekisho.effects.requests import SCHEDULER, SEKISHO, request_event
from sekisho.services.events import Event
from sekisho.store.tables import RequestRow


def used(fx: EffectContext, e: EmergencyUsed) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    model = fx.model
    template = model.template(row.template)
    ticket = (
        row.params.get(template.emergency.ticket, "") if template and template.emergency else ""
    )
    due = iso(row.review_due_at) if row.review_due_at else ""
    fx.note(
        row.id,
        e.at,
        "emergency",
        e.actor.name,
        f"EMERGENCY: approved at once without an approver (ticket {ticket}); "
        f"post-incident review due by {due}",
    )
    detail: dict[str, str | int] = {"ticket": ticket, "review_due": due, "reason": row.reason[:500]}
    fx.audit(e.at, request_event("request.emergency", e.actor, row, **detail))
    fx.outbox.emergency_used(fx.session, model, row)
    return []


def reviewed(fx: EffectContext, e: EmergencyReviewed) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    fx.note(row.id, e.at, "reviewed", e.actor.name, f"emergency reviewed: {e.comment}")
    fx.audit(e.at, request_event("request.reviewed", e.actor, row, comment=e.comment[:500]))
    return []


def overdue(fx: EffectContext, e: EmergencyReviewsOverdue) -> list[Event]:
    model = fx.model
    for request_id in e.request_ids:
        row = fx.session.get_one(RequestRow, request_id)
        due = iso(row.review_due_at) if row.review_due_at else ""
        fx.note(row.id, e.at, "review_overdue", SEKISHO, f"emergency review overdue since {due}")
        fx.audit(e.at, request_event("request.review_overdue", SCHEDULER, row, review_due=due))
        fx.outbox.review_overdue(fx.session, model, row, e.at)
    return [Event(QUEUED, e.at)]


HANDLERS: dict[type, Handler] = {
    EmergencyUsed: used,
    EmergencyReviewed: reviewed,
    EmergencyReviewsOverdue: overdue,
}
