"""Locks as interfaces call them (`core.locks`): place, remove, list and show.

Placing is `operations.locks.PlaceLock` (one audited act that ends what the lock covers);
removing is `RemoveLock`; reads are `queries.locks`.
"""

from __future__ import annotations

from sekisho.domain.actor import Actor
from sekisho.operations.locks import PlaceLock, RemoveLock
from sekisho.queries.locks import LockQueries
from sekisho.services.views import LockView, PlacedLockView


class LockService:
    def __init__(self, place: PlaceLock, remove: RemoveLock, reads: LockQueries) -> None:
        self._place, self._remove, self._reads = place, remove, reads

    def place(
        self,
        actor: Actor,
        kind: str,
        subject: str,
        reason: str,
        *,
        until: str | None = None,
        duration: str | None = None,
    ) -> PlacedLockView:
        """Lock `subject` now, until `until` or for `duration` (2h, 1d), or until removed."""
        done = self._place.execute(actor, kind, subject, reason, until=until, duration=duration)
        return PlacedLockView(
            lock=self._reads.get(actor, done.lock_id),
            tokens_revoked=done.tokens_revoked,
            requests_closed=done.requests_closed,
            grants_ended=done.grants.ended,
            grants_pending=done.grants.pending,
            role_sessions=done.role_sessions,
            errors=done.errors,
        )

    def remove(self, actor: Actor, lock_id: int) -> LockView:
        self._remove.execute(actor, lock_id)
        return self._reads.get(actor, lock_id)

    def list_locks(self, actor: Actor, *, everything: bool = False) -> list[LockView]:
        return self._reads.list_locks(actor, everything=everything)

    def get(self, actor: Actor, lock_id: int) -> LockView:
        return self._reads.get(actor, lock_id)
