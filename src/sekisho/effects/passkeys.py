"""What passkeys and step-ups leave behind: audit entries (the refusals too, denied)."""

from __future__ import annotations

from sekisho.domain.events import PasskeyRefused, PasskeyRegistered, PasskeyRemoved, StepUpProven
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event


def registered(fx: EffectContext, e: PasskeyRegistered) -> list[Event]:
    detail: dict[str, str | int] = {"passkey": e.passkey_id, "name": e.name}
    entry = AuditEvent("passkey.registered", e.actor.name, e.actor.source, detail=detail)
    fx.audit(e.at, entry)
    return []


def removed(fx: EffectContext, e: PasskeyRemoved) -> list[Event]:
    detail: dict[str, str | int] = {"passkey": e.passkey_id, "name": e.name}
    fx.audit(e.at, AuditEvent("passkey.removed", e.actor.name, e.actor.source, detail=detail))
    return []


def stepped_up(fx: EffectContext, e: StepUpProven) -> list[Event]:
    detail: dict[str, str | int] = {"factor": "passkey", "passkey": e.passkey_id, "name": e.name}
    fx.audit(e.at, AuditEvent("auth.step_up", e.actor.name, e.actor.source, detail=detail))
    return []


def refused(fx: EffectContext, e: PasskeyRefused) -> list[Event]:
    entry = AuditEvent(
        f"passkey.{e.ceremony}_refused",
        e.actor.name,
        e.actor.source,
        outcome="denied",
        detail={"reason": e.reason[:300]},
    )
    fx.audit(e.at, entry)
    return []


HANDLERS: dict[type, Handler] = {
    PasskeyRegistered: registered,
    PasskeyRemoved: removed,
    StepUpProven: stepped_up,
    PasskeyRefused: refused,
}
