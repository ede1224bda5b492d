"""What a runbook's events leave behind on its request: the timeline, the audit entries, the
requester's message, and `request.decided` on the bus once a run has finished."""

from __future__ import annotations

from sekisho.domain.actor import Actor
from sekisho.domain.events import (
    ExtensionRefused,
    RemovalFinished,
    RequestScheduled,
    RunbookFailed,
    RunbookStarted,
    RunbookSucceeded,
    RunbookTooLate,
)
from sekisho.domain.timespec import iso
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event
from sekisho.store.tables import GrantRow, RequestRow

RUNNER = Actor.system("runbook")
TOO_LATE = "the end time passed before the runbook could run"
UNCONFIRMED_ROLLBACK = "the provider has not confirmed the rollback; it is retried until it does"
UNCONFIRMED_REMOVAL = (
    "access ended in sekisho; the provider has not confirmed the removal and it will be retried"
)


def scheduled(fx: EffectContext, e: RequestScheduled) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    assert row.start_at is not None
    fx.note(row.id, e.at, "scheduled", RUNNER.name, f"runbook will run at {iso(row.start_at)}")
    return []


def started(fx: EffectContext, e: RunbookStarted) -> list[Event]:
    verb = "resumed" if e.resumed else "started"
    fx.note(e.request_id, e.at, "runbook", RUNNER.name, f"runbook {verb}")
    return []


def too_late(fx: EffectContext, e: RunbookTooLate) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    fx.note(row.id, e.at, "failed", RUNNER.name, TOO_LATE, status="failed")
    fx.audit(e.at, request_event("request.failed", row, error="end passed"))
    fx.outbox.runbook_finished(fx.session, row, ok=False, detail=TOO_LATE)
    return []


def succeeded(fx: EffectContext, e: RunbookSucceeded) -> list[Event]:
    """The holder hears of it through `grant.activated`: no runbook message of its own."""
    row = fx.session.get_one(RequestRow, e.request_id)
    grant = fx.session.get_one(GrantRow, e.grant_id)
    message = f"grant #{grant.id} active until {iso(grant.end_at)}"
    fx.note(row.id, e.at, "succeeded", RUNNER.name, message)
    fx.audit(e.at, request_event("request.succeeded", row))
    return []


def failed(fx: EffectContext, e: RunbookFailed) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    undo = "rolled back" if e.rolled_back else UNCONFIRMED_ROLLBACK
    message = f"runbook failed ({e.error}); {undo}"
    fx.note(row.id, e.at, "failed", RUNNER.name, message, status="failed")
    fx.audit(e.at, request_event("request.failed", row, error=e.error[:500]))
    fx.outbox.runbook_finished(fx.session, row, ok=False, detail=f"it failed ({e.error}); {undo}")
    return [Event("request.decided", e.at, row.id)]


def extension_refused(fx: EffectContext, e: ExtensionRefused) -> list[Event]:
    """Approved, but the grant could not take it: nothing changed, and the requester hears."""
    row = fx.session.get_one(RequestRow, e.request_id)
    message = f"grant #{e.grant_id} was not extended ({e.error}); it ends as before"
    fx.note(row.id, e.at, "failed", RUNNER.name, message, status="failed")
    fx.audit(e.at, request_event("request.failed", row, error=e.error[:500]))
    fx.outbox.runbook_finished(fx.session, row, ok=False, detail=message)
    return [Event("request.decided", e.at, row.id)]


def removal_finished(fx: EffectContext, e: RemovalFinished) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    if e.confirmed:
        outcome = "succeeded"
        message = f"removed {row.subject} from {row.group_name} ({e.ended} grant(s))"
    else:
        outcome, message = "failed", UNCONFIRMED_REMOVAL
    status = "ok" if e.confirmed else "failed"
    fx.note(row.id, e.at, outcome, RUNNER.name, message, status=status)
    fx.audit(e.at, request_event(f"request.{outcome}", row))
    fx.outbox.runbook_finished(fx.session, row, ok=e.confirmed, detail=message)
    return [Event("request.decided", e.at, row.id)]


def request_event(action: str, row: RequestRow, **detail: str | bool) -> AuditEvent:
    """A run's entry on its request: what it was for, and the error if it failed."""
    if row.emergency:  # a break-glass run says so too
        detail["emergency"] = True
    return AuditEvent(
        action,
        RUNNER.name,
        RUNNER.source,
        outcome="failed" if "failed" in action else "ok",
        subject=row.subject,
        request_id=row.id,
        detail={"template": row.template, "group": row.group_name, **detail},
    )


HANDLERS: dict[type, Handler] = {
    RequestScheduled: scheduled,
    RunbookStarted: started,
    RunbookTooLate: too_late,
    RunbookSucceeded: succeeded,
    RunbookFailed: failed,
    RemovalFinished: removal_finished,
    ExtensionRefused: extension_refused,
}
