"""What a production access decision leaves behind: an audit entry for every denial."""

from __future__ import annotations

from sekisho.domain.access_decisions import AccessDecision
from sekisho.domain.actor import Actor
from sekisho.domain.events import AccessDenied
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event


def denied(fx: EffectContext, e: AccessDenied) -> list[Event]:
    fx.audit(e.at, denial_event(e.actor, e.decision))
    return []


def denial_event(actor: Actor, decision: AccessDecision) -> AuditEvent:
    return AuditEvent(
        "authz.denied",
        actor.name,
        actor.source,
        outcome="denied",
        subject=decision.user,
        object=decision.object,
        detail={"verb": decision.verb.value, "reason": decision.reason[:500]},
    )


HANDLERS: dict[type, Handler] = {AccessDenied: denied}
