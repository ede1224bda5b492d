"""What forwarding sessions leave behind: their audit entries, and a kill's word to the
gateway carrying the session (which cuts it)."""

from __future__ import annotations

from sekisho.domain.actor import Actor
from sekisho.domain.events import (
    SessionEnded,
    SessionFailed,
    SessionKilled,
    SessionReaped,
    SessionStarted,
)
from sekisho.domain.sessions import killed
from sekisho.domain.timespec import iso
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent, DetailValue
from sekisho.services.events import Event
from sekisho.store.tables import SessionRow


def started(fx: EffectContext, e: SessionStarted) -> list[Event]:
    row = fx.session.get_one(SessionRow, e.session_id)
    fx.audit(e.at, session_event("session.started", row, {"end": iso(row.expires_at)}))
    return []


def failed(fx: EffectContext, e: SessionFailed) -> list[Event]:
    row = fx.session.get_one(SessionRow, e.session_id)
    fx.audit(e.at, session_event("session.failed", row, {"error": e.error}, "failed"))
    return []


def ended(fx: EffectContext, e: SessionEnded) -> list[Event]:
    row = fx.session.get_one(SessionRow, e.session_id)
    detail: dict[str, DetailValue] = {
        "reason": e.reason,
        "count": row.connections,
        "output": f"{row.bytes_up} bytes up, {row.bytes_down} bytes down",
    }
    fx.audit(e.at, session_event("session.ended", row, detail))
    return []


def reaped(fx: EffectContext, e: SessionReaped) -> list[Event]:
    row = fx.session.get_one(SessionRow, e.session_id)
    fx.audit(e.at, session_event("session.ended", row, {"reason": row.end_reason}))
    return []


def kill(fx: EffectContext, e: SessionKilled) -> list[Event]:
    row = fx.session.get_one(SessionRow, e.session_id)
    if not e.on_record_before:
        fx.audit(e.at, killed_event(row, e.actor))
    why = killed(row.killed_by, row.kill_reason)
    # Told again on a second kill: a gateway that missed the first event cuts it now.
    data = {"session_id": str(row.id), "reason": why}
    return [Event("session.kill", e.at, user=row.user, data=data)]


def killed_event(row: SessionRow, actor: Actor) -> AuditEvent:
    return AuditEvent(
        "session.killed",
        actor.name,
        actor.source[:256],
        subject=row.user,
        request_id=row.request_id,
        grant_id=row.grant_id,
        object=row.target,
        detail={"target": row.target, "reason": row.kill_reason or ""},
    )


def session_event(
    action: str, row: SessionRow, detail: dict[str, DetailValue], outcome: str = "ok"
) -> AuditEvent:
    """A session's audit entry, as its user, from the client's address."""
    return AuditEvent(
        action,
        row.user,
        row.client_addr,
        outcome=outcome,
        subject=row.user,
        request_id=row.request_id,
        grant_id=row.grant_id,
        object=row.target,
        detail={"target": row.target, **detail},
    )


HANDLERS: dict[type, Handler] = {
    SessionStarted: started,
    SessionFailed: failed,
    SessionEnded: ended,
    SessionReaped: reaped,
    SessionKilled: kill,
}
