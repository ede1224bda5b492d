"""What locks leave behind: their audit entries, the requests they closed, and word to every
gateway (each cuts the sessions a new lock covers, with its reason)."""

from __future__ import annotations

from sekisho.domain.actor import Actor
from sekisho.domain.events import LockPlaced, LockRemoved, RequestLocked
from sekisho.domain.locks import Lock, LockKind
from sekisho.domain.timespec import iso
from sekisho.effects.context import EffectContext, Handler
from sekisho.effects.requests import request_event
from sekisho.services.audit import AuditEvent
from sekisho.services.events import LOCK_PLACED, Event
from sekisho.signals import sets
from sekisho.store.tables import RequestRow


def placed(fx: EffectContext, e: LockPlaced) -> list[Event]:
    lock = e.lock
    ended = {"tokens": e.tokens_revoked, "count": e.grants_ending}
    fx.audit(e.at, _lock_event("lock.placed", e.actor, lock, **ended))
    fx.outbox.lock_changed(fx.session, lock, placed=True, ended=e.grants_ending)
    user = lock.subject if lock.kind is LockKind.USER else None
    if user is not None:  # every session of theirs ends (their grants' endings tell theirs)
        initiator = sets.SYSTEM if e.actor.is_system else sets.ADMIN
        why = lock.message[:500]
        fx.signals.session_revoked(fx.session, fx.model_of, user, e.at, why, initiator)
    data = {
        "lock_id": str(lock.id),
        "kind": lock.kind.value,
        "subject": lock.subject,
        "reason": lock.message[:300],
    }
    return [Event(LOCK_PLACED, e.at, user=user, data=data)]


def removed(fx: EffectContext, e: LockRemoved) -> list[Event]:
    fx.audit(e.at, _lock_event("lock.removed", e.actor, e.lock))
    fx.outbox.lock_changed(fx.session, e.lock, placed=False)
    return []


def request_locked(fx: EffectContext, e: RequestLocked) -> list[Event]:
    row = fx.session.get_one(RequestRow, e.request_id)
    by = Actor(e.lock.created_by, "lock")
    fx.note(row.id, e.at, "locked", by.name, f"closed: {e.lock.message}", status="failed")
    detail: dict[str, str | int] = {"reason": e.lock.message[:500], "lock": e.lock.id}
    fx.audit(e.at, request_event("request.locked", by, row, **detail))
    fx.outbox.request_closed(fx.session, row, "locked", e.lock.message)
    return [Event("request.decided", e.at, row.id)]


def _lock_event(action: str, actor: Actor, lock: Lock, **extra: int) -> AuditEvent:
    detail: dict[str, str | int | bool | None] = {
        "lock": lock.id,
        "kind": lock.kind.value,
        "reason": lock.reason[:500],
        "until": iso(lock.until) if lock.until else None,
        **extra,
    }
    on_user = lock.kind is LockKind.USER
    return AuditEvent(
        action,
        actor.name,
        actor.source,
        subject=lock.subject if on_user else None,
        object=None if on_user else lock.subject,
        detail=detail,
    )


HANDLERS: dict[type, Handler] = {
    LockPlaced: placed,
    LockRemoved: removed,
    RequestLocked: request_locked,
}
