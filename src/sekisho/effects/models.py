"""What loading a model leaves behind: its audit entry, and word to every node."""

from __future__ import annotations

from sekisho.domain.events import ModelLoaded
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event


def loaded(fx: EffectContext, e: ModelLoaded) -> list[Event]:
    detail: dict[str, str | int | bool | None] = {
        "sha256": e.sha256,
        "source_name": e.source_name[:200],
    }
    fx.audit(e.at, AuditEvent("model.loaded", e.actor.name, e.actor.source, detail=detail))
    # Decisions may change: gateways re-check their live sessions under the new model.
    return [Event("model.loaded", e.at, data={"sha256": e.sha256})]


HANDLERS: dict[type, Handler] = {ModelLoaded: loaded}
