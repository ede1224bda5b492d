"""What a person sees of their passkeys, and whether their session has stepped up lately."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.domain.step_up import Proof, StepUpRule, fresh_proof
from sekisho.store import step_ups
from sekisho.store.tables import PasskeyRow
from sekisho.store.unit_of_work import Store


@dataclass(frozen=True)
class PasskeyView:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


class PasskeyQueries:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def passkeys(self, actor: Actor) -> list[PasskeyView]:
        """The actor's own passkeys, oldest first."""
        query = select(PasskeyRow).where(PasskeyRow.user == actor.name).order_by(PasskeyRow.id)
        with self._store.read() as s:
            return [
                PasskeyView(row.id, row.name, row.created_at, row.last_used_at)
                for row in s.scalars(query)
            ]

    def fresh(self, actor: Actor, rule: StepUpRule) -> Proof | None:
        """The proof on the actor's session that meets `rule` now, if any."""
        with self._store.read() as s:
            return fresh_proof(rule, step_ups.proofs_of(s, actor.token_id), self._clock.now())
