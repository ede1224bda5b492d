"""Reading grants: one, or a list, each with what the viewer may do to it now."""

from __future__ import annotations

from sqlalchemy import select

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Forbidden, NotFound
from sekisho.ports import ModelSource
from sekisho.queries.viewers import viewer_of
from sekisho.services import permissions
from sekisho.services.views import GrantView
from sekisho.store import grants
from sekisho.store.tables import GrantRow
from sekisho.store.unit_of_work import Store


class GrantQueries:
    """What a viewer may see of grants: their own, or everyone's for auditors."""

    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def list_grants(
        self, actor: Actor, *, active_only: bool = False, user: str | None = None, limit: int = 500
    ) -> list[GrantView]:
        """Newest first: the actor's own, or anyone's (`user`, or everyone) for auditors."""
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
            viewer = viewer_of(model, actor)
            rows = s.scalars(stmt.limit(max(1, min(limit, 5000))))
            views = [GrantView.of(r, now, viewer) for r in rows]
        return [v for v in views if v.active] if active_only else views

    def get(self, actor: Actor, grant_id: int) -> GrantView:
        """The holder's own grant, or anyone's for auditors."""
        with self._store.read() as s:
            model = self._models.model(s)
            row = s.get(GrantRow, grant_id)
            if row is None or not (row.user == actor.name or permissions.is_auditor(model, actor)):
                raise NotFound(f"no grant #{grant_id}")
            return GrantView.of(row, self._clock.now(), viewer_of(model, actor))
