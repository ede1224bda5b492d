"""Effects: the one place where what an operation did becomes timeline, audit, outbox and bus.

`Effects.apply` runs inside the operation's transaction as each event is recorded, so the
change, its story, its audit entry and its messages commit together or not at all, in the
order they happened. It returns the bus events, which the unit of work publishes after the
commit (a subscriber never sees a change that then rolled back).

Each area's handlers live beside each other (`effects/requests.py`, ...); `HANDLERS` maps an
event type to its handler, so a new notifier or a new kind of record is one more line here,
not an edit of every use case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel
from sekisho.domain.events import DomainEvent
from sekisho.effects import (
    access_decisions,
    audit_checkpoints,
    credentials,
    directory,
    emergency,
    grants,
    identity,
    locks,
    models,
    notify,
    passkeys,
    reconcile,
    requests,
    runbook,
    sessions,
    shared_ca,
    shared_signals,
    slack,
)
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.events import Event

if TYPE_CHECKING:
    from sekisho.notify.notices import Notices
    from sekisho.signals.outbox import SignalQueue


# Every area whose events have effects; each module's HANDLERS maps its event types.
AREAS = (
    requests,
    emergency,
    grants,
    runbook,
    reconcile,
    credentials,
    access_decisions,
    models,
    identity,
    passkeys,
    slack,
    directory,
    locks,
    sessions,
    audit_checkpoints,
    shared_ca,
    shared_signals,
    notify,
)


def handlers() -> dict[type, Handler]:
    """Every event type's one handler (two for one type would be a silent override)."""
    merged: dict[type, Handler] = {}
    for area in AREAS:
        for kind, handler in area.HANDLERS.items():
            if kind in merged:
                raise TypeError(f"{kind.__name__} has two effect handlers")
            merged[kind] = handler
    return merged


class Effects:
    def __init__(
        self,
        node: str | None,
        outbox: Notices,
        model_of: Callable[[Session], AccessModel],
        signals: SignalQueue,
    ) -> None:
        self._node, self._outbox, self._model_of = node, outbox, model_of
        self._signals = signals
        self._handlers = handlers()

    def context(self, session: Session) -> EffectContext:
        """What the handlers of one transaction's events touch (made once per unit of work:
        a sweep records 40,000 events in a few transactions)."""
        return EffectContext(session, self._node, self._outbox, self._model_of, self._signals)

    def apply(self, fx: EffectContext, event: DomainEvent) -> list[Event]:
        handler = self._handlers.get(type(event))
        if handler is None:
            raise TypeError(f"no effect handler for {type(event).__name__}")
        return handler(fx, event)
