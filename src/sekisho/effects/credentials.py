"""What issuing role credentials leaves behind: one audit entry, never the secrets."""

from __future__ import annotations

from sekisho.domain.events import CredentialsIssued
from sekisho.domain.timespec import format_duration, iso
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event


def issued(fx: EffectContext, e: CredentialsIssued) -> list[Event]:
    fx.audit(
        e.at,
        AuditEvent(
            "credentials.issued",
            e.actor.name,
            e.actor.source,
            subject=e.actor.name,
            grant_id=e.grant_id,
            request_id=e.request_id,
            object=e.role,
            detail={
                "role": e.role_arn,
                "via": e.via[:200],
                "expires": iso(e.expires),
                "output": f"session {e.session_name} for {format_duration(e.length)}",
            },
        ),
    )
    return []


HANDLERS: dict[type, Handler] = {CredentialsIssued: issued}
