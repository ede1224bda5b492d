"""What an effect handler may touch: the transaction, and the recorders that write into it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel
from sekisho.services import audit, timeline
from sekisho.services.events import Event

if TYPE_CHECKING:
    from sekisho.notify.notices import Notices
    from sekisho.signals.outbox import SignalQueue


@dataclass(frozen=True)
class EffectContext:
    session: Session
    node: str | None
    outbox: Notices  # the notification hooks
    model_of: Callable[[Session], AccessModel]
    signals: SignalQueue  # Shared Signals: the SETs to push

    @property
    def model(self) -> AccessModel:
        return self.model_of(self.session)

    def audit(self, at: datetime, event: audit.AuditEvent) -> None:
        audit.record(self.session, at, event, self.node)

    def note(
        self,
        request_id: int,
        at: datetime,
        kind: str,
        actor: str,
        message: str,
        status: str = "ok",
    ) -> None:
        timeline.note(self.session, request_id, at, kind, actor, message, status)


Handler = Callable[[EffectContext, Any], list[Event]]
