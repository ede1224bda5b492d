"""May USER assume ROLE / connect TARGET now? The production access decision, recorded nowhere.

`DecideAccess` reads; `operations.access_decisions.CheckAccess` is the same decision asked on
someone's behalf, whose denials are recorded (and so audited).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel, Verb
from sekisho.domain.access_decisions import AccessDecision, decide_access
from sekisho.domain.grants import GrantWindow
from sekisho.ports import ModelSource
from sekisho.store import grants, locks
from sekisho.store.unit_of_work import Store


class DecideAccess:
    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def execute(
        self, user: str, verb: Verb, obj: str, at: datetime | None = None
    ) -> AccessDecision:
        """The decision alone, without recording it (for pages that show what a user can reach)."""
        with self._store.read() as s:
            return self.in_session(s, self._models.model(s), user, verb, obj, at)

    def in_session(
        self,
        session: Session,
        model: AccessModel,
        user: str,
        verb: Verb,
        obj: str,
        at: datetime | None = None,
    ) -> AccessDecision:
        """The decision in the caller's transaction, on the model it read there."""
        at = at or self._clock.now()
        live = live_grants(session, user, at)
        return decide_access(model, user, verb, obj, live, at, locks.in_force(session, at))


def live_grants(session: Session, user: str, at: datetime) -> list[GrantWindow]:
    """The user's grants active at `at`; `is_active` decides the same for each of them."""
    return grants.active_windows(session, user, at)
