"""What a request's events leave behind: its timeline, its audit entries, its messages."""

from __future__ import annotations

from datetime import timedelta

from sekisho.domain import timespec
from sekisho.domain.actor import Actor
from sekisho.domain.events import (
    OnCallChecked,
    RequestAutoApproved,
    RequestCancelled,
    RequestDecided,
    RequestExpiredUndecided,
    RequestFiled,
)
from sekisho.domain.timespec import iso
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event
from sekisho.store.tables import RequestRow

WORKFLOW = Actor.system("workflow")
SCHEDULER = Actor.system("scheduler")
SEKISHO = "sekisho"  # the timeline's name for steps nobody in particular took


def filed(fx: EffectContext, e: RequestFiled) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    fx.note(row.id, e.at, "filed", e.actor.name, f"filed: {e.summary}")
    fx.audit(e.at, request_event("request.filed", e.actor, row))
    fx.outbox.request_filed(fx.session, fx.model, row)
    return [Event("request.filed", e.at, row.id, None, row.subject, row.group_name)]


def auto_approved(fx: EffectContext, e: RequestAutoApproved) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    fx.note(row.id, e.at, "approved", SEKISHO, e.why)
    fx.audit(e.at, request_event("request.approved", WORKFLOW, row))
    return []


def decided(fx: EffectContext, e: RequestDecided) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    said = f": {e.comment}" if e.comment else ""
    # 1-based, as people count.
    how = f" (confirmed: {e.step_up.method.value})" if e.step_up is not None else ""
    fx.note(row.id, e.at, e.verb, e.actor.name, f"{e.verb} at level {e.level + 1}{how}{said}")
    if e.final and e.approved:
        fx.note(row.id, e.at, "approved", SEKISHO, "all approval levels passed")
    detail: dict[str, str | int] = {"comment": e.comment[:500], "level": e.level + 1}
    if e.step_up is not None:  # the strong factor the approver showed, and when
        detail |= {"step_up": e.step_up.method.value, "step_up_at": iso(e.step_up.at)}
    fx.audit(e.at, request_event(f"request.{e.verb}", e.actor, row, **detail))
    model = fx.model
    fx.outbox.request_decided(fx.session, model, row, e.actor.name, e.verb, e.comment, e.level)
    return [Event("request.decided", e.at, row.id, None, row.subject, row.group_name)]


def cancelled(fx: EffectContext, e: RequestCancelled) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    fx.note(row.id, e.at, "cancelled", e.actor.name, "cancelled by the requester")
    fx.audit(e.at, request_event("request.cancelled", e.actor, row))
    fx.outbox.request_closed(fx.session, row, "cancelled")
    return [Event("request.decided", e.at, row.id)]


def expired_undecided(fx: EffectContext, e: RequestExpiredUndecided) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    why = "nobody decided before the deadline"
    if row.extends_grant_id is not None:
        why = f"nobody decided before grant #{row.extends_grant_id} reached its end; it ends then"
    fx.note(row.id, e.at, "expired", SEKISHO, why)
    fx.audit(e.at, request_event("request.expired", SCHEDULER, row))
    fx.outbox.request_closed(fx.session, row, "expired")
    return [Event("request.decided", e.at, row.id)]


def request_event(action: str, actor: Actor, row: RequestRow, **detail: str | int) -> AuditEvent:
    """A request's audit entry: what it asks for and where it stands now."""
    base: dict[str, str | int | bool | None] = {
        "template": row.template,
        "group": row.group_name,
        "status": row.status,
    }
    if row.extends_grant_id is not None:
        base["extends_grant"] = row.extends_grant_id
    if row.end_at is not None:
        base["end"] = timespec.iso(row.end_at)
    elif row.duration_s:
        base["duration"] = timespec.format_duration(timedelta(seconds=row.duration_s))
    if row.start_at is not None:
        base["start"] = timespec.iso(row.start_at)
    if row.emergency:  # every entry of a break-glass request says so, not only the first
        base["emergency"] = True
    base.update(detail)
    return AuditEvent(
        action, actor.name, actor.source, subject=row.subject, request_id=row.id, detail=base
    )


def on_call_checked(fx: EffectContext, e: OnCallChecked) -> list[Event]:
    """The timeline says why an on-call level did not pass: it waits for its approvers."""
    text = f"level {e.level + 1} did not pass on call: {e.why}; it waits for its approvers"
    fx.note(e.request_id, e.at, "on_call", SEKISHO, text)
    return []


HANDLERS: dict[type, Handler] = {
    OnCallChecked: on_call_checked,
    RequestFiled: filed,
    RequestAutoApproved: auto_approved,
    RequestDecided: decided,
    RequestCancelled: cancelled,
    RequestExpiredUndecided: expired_undecided,
}
