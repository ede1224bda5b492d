"""What storing a shared certificate authority leaves behind: its audit entry."""

from __future__ import annotations

from sekisho.domain.actor import Actor
from sekisho.domain.events import CertificateAuthorityStored
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event

GATEWAY = Actor.system("gateway")


def stored(fx: EffectContext, e: CertificateAuthorityStored) -> list[Event]:
    entry = AuditEvent(
        action=f"{e.name}_ca.{e.origin}",  # gateway_ca.created | gateway_ca.imported
        actor=GATEWAY.name,
        source=e.node[:256],
        object=e.name,
        detail={"sha256": e.sha256},
    )
    fx.audit(e.at, entry)
    return []


HANDLERS: dict[type, Handler] = {CertificateAuthorityStored: stored}
