"""Grants as interfaces call them (`core.grants`): list and show, release and revoke.

Ending is `operations.grants.EndGrants`, the one way any grant ends; release and revoke are
operations that check and start the ending in one transaction.
"""

from __future__ import annotations

from sqlalchemy import select

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Forbidden, NotFound
from sekisho.operations.grants import ReleaseGrant, RevokeGrant
from sekisho.ports import ModelSource
from sekisho.services import permissions
from sekisho.services.views import GrantView
from sekisho.store import grants
from sekisho.store.tables import GrantRow
from sekisho.store.unit_of_work import Store


class GrantReads:
    """What a viewer may see of grants: their own, or everyone's for auditors."""

    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def list_grants(
        self, actor: Actor, *, active_only: bool = False, user: str | None = None, limit: int = 500
    ) -> list[GrantView]:
        now = self._clock.now()
        with self._store.read() as s:
            model = self._models.model(s)
            stmt = select(GrantRow).order_by(GrantRow.id.desc())
            if not permissions.is_auditor(model, actor):
                if user not in (None, actor.name):
                    raise Forbidden("you may list only your own grants")
                user = actor.name
            if user is not None:
                stmt = stmt.where(GrantRow.user == user)
            if active_only:
                stmt = stmt.where(grants.active_at(now))
            rows = s.scalars(stmt.limit(max(1, min(limit, 5000))))
            views = [GrantView.of(r, now) for r in rows]
        return [v for v in views if v.active] if active_only else views

    def get(self, actor: Actor, grant_id: int) -> GrantView:
        with self._store.read() as s:
            model = self._models.model(s)
            row = s.get(GrantRow, grant_id)
            if row is None or not (row.user == actor.name or permissions.is_auditor(model, actor)):
                raise NotFound(f"no grant #{grant_id}")
            return GrantView.of(row, self._clock.now())


class GrantService:
    def __init__(self, reads: GrantReads, release: ReleaseGrant, revoke: RevokeGrant) -> None:
        self._reads, self._release, self._revoke = reads, release, revoke

    def list_grants(
        self, actor: Actor, *, active_only: bool = False, user: str | None = None, limit: int = 500
    ) -> list[GrantView]:
        return self._reads.list_grants(actor, active_only=active_only, user=user, limit=limit)

    def get(self, actor: Actor, grant_id: int) -> GrantView:
        return self._reads.get(actor, grant_id)

    def release(self, actor: Actor, grant_id: int) -> GrantView:
        """The holder is done: end the grant now."""
        self._release.execute(actor, grant_id)
        return self.get(actor, grant_id)

    def revoke(self, actor: Actor, grant_id: int, reason: str) -> GrantView:
        self._revoke.execute(actor, grant_id, reason)
        return self.get(actor, grant_id)
