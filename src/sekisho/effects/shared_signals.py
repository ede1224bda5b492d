"""What Shared Signals' own events leave behind: audit entries for streams and received SETs,
and a verification SET in the outbox. (The session-revoked SETs a grant's ending or a lock
sends are written by those events' handlers, through `EffectContext.signals`.)"""

from __future__ import annotations

from sekisho.domain.events import (
    SignalReceived,
    StreamCreated,
    StreamDeleted,
    StreamVerificationRequested,
)
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event

QUEUED = "notify.queued"


def stream_created(fx: EffectContext, e: StreamCreated) -> list[Event]:
    detail: dict[str, str | int | bool | None] = {
        "stream": e.stream_id,
        "endpoint": e.endpoint_url[:500],
        "events": " ".join(e.events)[:1000],
    }
    fx.audit(e.at, AuditEvent("ssf.stream_created", e.actor.name, e.actor.source, detail=detail))
    return []


def stream_deleted(fx: EffectContext, e: StreamDeleted) -> list[Event]:
    detail: dict[str, str | int | bool | None] = {"stream": e.stream_id}
    fx.audit(e.at, AuditEvent("ssf.stream_deleted", e.actor.name, e.actor.source, detail=detail))
    return []


def verification_requested(fx: EffectContext, e: StreamVerificationRequested) -> list[Event]:
    fx.signals.verification(fx.session, e.stream_id, e.audience, e.state, e.at)
    return [Event(QUEUED, e.at)]


def signal_received(fx: EffectContext, e: SignalReceived) -> list[Event]:
    detail: dict[str, str | int | bool | None] = {
        "issuer": e.issuer[:500],
        "jti": e.jti,
        "event": e.event_type,
        "outcome": e.outcome,
    }
    fx.audit(
        e.at,
        AuditEvent(
            "ssf.received", f"ssf:{e.issuer}"[:128], "shared-signals", subject=e.user, detail=detail
        ),
    )
    return []


HANDLERS: dict[type, Handler] = {
    StreamCreated: stream_created,
    StreamDeleted: stream_deleted,
    StreamVerificationRequested: verification_requested,
    SignalReceived: signal_received,
}
