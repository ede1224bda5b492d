"""Reading Shared Signals streams (admins): one stream's configuration, or all of them."""

from __future__ import annotations

from sekisho.domain.actor import Actor
from sekisho.domain.errors import NotFound
from sekisho.ports import ModelSource
from sekisho.services import permissions
from sekisho.services.views import StreamDelivery, StreamStatusView, StreamView
from sekisho.signals import sets, streams
from sekisho.store.tables import SsfStreamRow
from sekisho.store.unit_of_work import Store


class StreamQueries:
    def __init__(self, store: Store, models: ModelSource, issuer: str) -> None:
        self._store, self._models, self._issuer = store, models, issuer

    def get(self, actor: Actor, stream_id: str) -> StreamView:
        with self._store.read() as s:
            permissions.require_admin(self._models.model(s), actor, "read Shared Signals streams")
            row = streams.stream(s, stream_id)
            if row is None:
                raise NotFound(f"no stream {stream_id[:64]!r}")
            return self._view(row)

    def listed(self, actor: Actor) -> list[StreamView]:
        with self._store.read() as s:
            permissions.require_admin(self._models.model(s), actor, "read Shared Signals streams")
            return [self._view(row) for row in streams.listed(s)]

    def status(self, actor: Actor, stream_id: str) -> StreamStatusView:
        found = self.get(actor, stream_id)
        return StreamStatusView(stream_id=found.stream_id, status="enabled")

    def _view(self, row: SsfStreamRow) -> StreamView:
        return StreamView(
            stream_id=row.stream_id,
            iss=self._issuer,
            aud=row.audience,
            delivery=StreamDelivery(method=sets.PUSH_METHOD, endpoint_url=row.endpoint_url),
            events_supported=list(sets.EVENTS_SUPPORTED),
            events_requested=list(row.events_requested),
            events_delivered=list(row.events_requested),
            description=row.description,
            created_by=row.created_by,
            created_at=row.created_at,
        )
