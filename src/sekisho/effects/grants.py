"""What a grant's events leave behind: its request's timeline, its audit entries, its messages,
and what the bus hears (the gateway cuts live sessions on `grant.ended`)."""

from __future__ import annotations

from sekisho.domain.actor import Actor
from sekisho.domain.events import (
    GrantActivated,
    GrantEnded,
    GrantEndFailed,
    GrantEnding,
    GrantExtended,
    RunbookStep,
    SeedGrantImported,
)
from sekisho.domain.grants import EndingGrant, EndReason
from sekisho.domain.timespec import iso
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event
from sekisho.signals import sets
from sekisho.store.tables import GrantRow, RequestRow

RECONCILER = Actor.system("reconciler")
# Who ended the access, in CAEP's words (the session-revoked SET's initiating_entity).
_INITIATORS = {
    EndReason.EXPIRED: sets.POLICY,
    EndReason.RELEASED: sets.USER,
    EndReason.REVOKED: sets.ADMIN,
    EndReason.REMOVED: sets.ADMIN,
    EndReason.LOCKED: sets.ADMIN,
}


def activated(fx: EffectContext, e: GrantActivated) -> list[Event]:
    """Access starts: audited, the holder told, the reminder before its end scheduled."""
    grant = fx.session.get_one(GrantRow, e.grant_id)
    request = fx.session.get_one(RequestRow, grant.request_id)
    fx.audit(e.at, _activated_event(grant, request, e.actor))
    fx.outbox.grant_activated(fx.session, request, grant)
    return [Event("grant.activated", e.at, request.id, grant.id, grant.user, grant.group_name)]


def extended(fx: EffectContext, e: GrantExtended) -> list[Event]:
    """The grant's end moved: both requests' timelines, the audit trail (old and new end),
    the reminder before the end moved with it, and the bus (the gateway's sessions carried
    by the grant now last until the new end)."""
    grant = fx.session.get_one(GrantRow, e.grant_id)
    request = fx.session.get_one(RequestRow, grant.request_id)
    moved = f"ends at {iso(e.new_end)} instead of {iso(e.old_end)}"
    who = e.actor.name
    fx.note(e.request_id, e.at, "grant.extended", who, f"grant #{grant.id} extended: {moved}")
    fx.note(
        request.id, e.at, "grant.extended", who, f"extended by request #{e.request_id}: {moved}"
    )
    fx.audit(
        e.at,
        AuditEvent(
            "grant.extended",
            e.actor.name,
            e.actor.source,
            subject=grant.user,
            request_id=request.id,
            grant_id=grant.id,
            detail={
                "group": grant.group_name,
                "old_end": iso(e.old_end),
                "end": iso(e.new_end),
                "extension": e.request_id,
                "template": request.template,
            },
        ),
    )
    fx.outbox.grant_extended(fx.session, request, grant)
    data = {"end": iso(e.new_end)}
    return [Event("grant.extended", e.at, request.id, grant.id, grant.user, grant.group_name, data)]


def imported(fx: EffectContext, e: SeedGrantImported) -> list[Event]:
    fx.note(e.request_id, e.at, "imported", RECONCILER.name, f"grant #{e.grant_id} imported")
    return []


def step(fx: EffectContext, e: RunbookStep) -> list[Event]:
    for request_id in e.request_ids:
        fx.note(
            request_id,
            e.at,
            f"step:{e.step}",
            e.actor.name,
            f"{e.step}: {e.output}",
            status="ok" if e.ok else "failed",
        )
    return []


def ending(fx: EffectContext, e: GrantEnding) -> list[Event]:
    """Access ended: on the timeline, the holder told once, subscribers hear it at commit."""
    grant = e.grant
    if grant.reason is EndReason.FAILED:
        # Never usable: no access to cut, and the failed run's own entries tell the story.
        return []
    why = describe(grant.reason, grant.note)
    fx.note(
        grant.request_id,
        e.at,
        "grant.ending",
        e.actor.name,
        f"access to {grant.group} ended ({why})",
    )
    fx.outbox.grant_ended(fx.session, grant)
    fx.signals.session_revoked(
        fx.session,
        fx.model_of,
        grant.user,
        e.at,
        f"grant #{grant.id} to {grant.group} ended ({why})"[:500],
        _INITIATORS.get(grant.reason, sets.SYSTEM),
    )
    data = {"reason": why[:300]}
    return [Event("grant.ended", e.at, grant.request_id, grant.id, grant.user, grant.group, data)]


def ended(fx: EffectContext, e: GrantEnded) -> list[Event]:
    grant = e.grant
    fx.note(
        grant.request_id,
        e.at,
        "grant.ended",
        e.actor.name,
        f"grant #{grant.id} {grant.status}; the provider confirmed",
    )
    fx.audit(e.at, _ended_event(grant, e.actor, e.output))
    fx.outbox.ending_outcome(fx.session, grant, e.actor, confirmed=True)
    return []


def end_failed(fx: EffectContext, e: GrantEndFailed) -> list[Event]:
    fx.audit(e.at, _end_failed_event(e.grant, e.actor))
    fx.outbox.ending_outcome(fx.session, e.grant, e.actor, confirmed=False)
    return []


def describe(reason: EndReason, note: str) -> str:
    return f"{reason.value}: {note}" if note else reason.value


def _activated_event(grant: GrantRow, request: RequestRow, actor: Actor) -> AuditEvent:
    return AuditEvent(
        "grant.activated",
        actor.name,
        actor.source,
        subject=grant.user,
        request_id=request.id,
        grant_id=grant.id,
        detail={
            "group": grant.group_name,
            "start": iso(grant.start_at),
            "end": iso(grant.end_at),
            "template": request.template,
        },
    )


def _ended_event(grant: EndingGrant, actor: Actor, output: str) -> AuditEvent:
    return AuditEvent(
        f"grant.{grant.status}",  # expired, revoked, or failed (a failed run's undo confirmed)
        actor.name,
        actor.source,
        subject=grant.user,
        request_id=grant.request_id,
        grant_id=grant.id,
        detail={
            "group": grant.group,
            "reason": describe(grant.reason, grant.note)[:500],
            "end": iso(grant.end_at),
            "output": output[:1000],
        },
    )


def _end_failed_event(grant: EndingGrant, actor: Actor) -> AuditEvent:
    return AuditEvent(
        "grant.end_failed",
        actor.name,
        actor.source,
        outcome="failed",
        subject=grant.user,
        request_id=grant.request_id,
        grant_id=grant.id,
        detail={
            "group": grant.group,
            "attempts": grant.attempts,
            "error": (grant.last_error or "")[:1000],
        },
    )


HANDLERS: dict[type, Handler] = {
    GrantActivated: activated,
    GrantExtended: extended,
    SeedGrantImported: imported,
    RunbookStep: step,
    GrantEnding: ending,
    GrantEnded: ended,
    GrantEndFailed: end_failed,
}
