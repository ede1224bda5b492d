"""Reading locks: the list (those who may lock, auditors and admins), one lock, and the locks
that concern one user (on `whoami` and a user's page)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Forbidden, NotFound
from sekisho.domain.locks import Lock
from sekisho.ports import ModelSource
from sekisho.services import permissions
from sekisho.services.views import LockView
from sekisho.store import locks
from sekisho.store.tables import LockRow
from sekisho.store.unit_of_work import Store


class LockQueries:
    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def list_locks(self, actor: Actor, *, everything: bool = False) -> list[LockView]:
        """Newest first: the locks in force, or (`everything`) every lock ever placed."""
        now = self._clock.now()
        with self._store.read() as s:
            model = self._models.model(s)
            _require_viewer(model, actor)
            may_lock = permissions.may_lock(model, actor)
            rows = locks.listed(s, now, everything=everything)
            return [LockView.of(row, now, may_lock) for row in rows]

    def get(self, actor: Actor, lock_id: int) -> LockView:
        now = self._clock.now()
        with self._store.read() as s:
            model = self._models.model(s)
            _require_viewer(model, actor)
            row = s.get(LockRow, lock_id)
            if row is None:
                raise NotFound(f"no lock #{lock_id}")
            return LockView.of(row, now, permissions.may_lock(model, actor))


def concerning(s: Session, model: AccessModel, user: str, at: datetime) -> list[LockView]:
    """The locks in force on `user`, on one of their standing groups, or on what those groups
    reach: what stands between them and access now."""
    groups = model.standing_groups_of(user)
    found = [
        lock
        for lock in locks.in_force(s, at)
        if lock.covers_user(user) or any(_covers(lock, g.name, model) for g in groups)
    ]
    rows = [s.get_one(LockRow, lock.id) for lock in found]
    return [LockView.of(row, at) for row in rows]


def _covers(lock: Lock, group: str, model: AccessModel) -> bool:
    found = model.group(group)
    return found is not None and lock.covers_group(found)


def _require_viewer(model: AccessModel, actor: Actor) -> None:
    if not permissions.may_see_locks(model, actor):
        raise Forbidden("only those who may lock, auditors and admins see locks")
