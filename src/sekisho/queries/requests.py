"""Reading requests: one with its timeline and grant, or a list as the viewer may see it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select

from sekisho.clock import Clock
from sekisho.domain.actions import Action
from sekisho.domain.actor import Actor
from sekisho.domain.errors import NotFound
from sekisho.domain.requests import RequestStatus
from sekisho.ports import ModelSource
from sekisho.queries.viewers import viewer_of
from sekisho.services import permissions
from sekisho.services.views import EmergencyCount, RequestSummary, RequestView, request_actions
from sekisho.store.tables import GrantRow, RequestRow, TimelineRow
from sekisho.store.unit_of_work import Store


@dataclass(frozen=True)
class RequestQuery:
    mine: bool = False  # filed by me or granting me
    to_approve: bool = False  # waiting for a decision I may give
    status: RequestStatus | None = None
    emergency: bool = False  # only emergency (break-glass) requests
    limit: int = 200


class RequestQueries:
    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def get(self, actor: Actor, request_id: int) -> RequestView:
        with self._store.read() as s:
            model = self._models.model(s)
            row = s.get(RequestRow, request_id)
            if row is None or not permissions.may_view_request(model, actor, row):
                raise NotFound(f"no request #{request_id}")
            entries = list(
                s.scalars(
                    select(TimelineRow)
                    .where(TimelineRow.request_id == request_id)
                    .order_by(TimelineRow.id)
                )
            )
            grant = s.scalar(select(GrantRow).where(GrantRow.request_id == request_id))
            extended = s.get(GrantRow, row.extends_grant_id) if row.extends_grant_id else None
            viewer, now = viewer_of(model, actor), self._clock.now()
            return RequestView.build(row, model, entries, grant, now, viewer, extended)

    def list_requests(self, actor: Actor, query: RequestQuery) -> list[RequestSummary]:
        with self._store.read() as s:
            model = self._models.model(s)
            stmt = select(RequestRow).order_by(RequestRow.id.desc())
            mine = (RequestRow.requester == actor.name) | (RequestRow.subject == actor.name)
            approvable = [
                t.name
                for t in model.templates
                if permissions.may_approve_some_level(model, actor, t.name)
            ]
            if query.to_approve:
                stmt = stmt.where(
                    RequestRow.status == RequestStatus.PENDING_APPROVAL,
                    RequestRow.template.in_(approvable),
                    ~mine,
                )
            elif query.mine:
                stmt = stmt.where(mine)
            elif not permissions.is_auditor(model, actor):
                stmt = stmt.where(mine | RequestRow.template.in_(approvable))
            if query.status is not None:
                stmt = stmt.where(RequestRow.status == query.status)
            if query.emergency:
                stmt = stmt.where(RequestRow.emergency.is_(True))
            limit = max(1, min(query.limit, 1000))
            rows = list(s.scalars(stmt.limit(limit)))
            viewer, now = viewer_of(model, actor), self._clock.now()
            found = [RequestSummary.of(r, request_actions(viewer, r, model, now)) for r in rows]
        if query.to_approve:  # waiting for me: what I may decide now, by the rule itself
            return [r for r in found if Action.APPROVE in r.allowed_actions]
        return found

    def emergencies(self, actor: Actor) -> list[EmergencyCount]:
        """Emergency use per person, for auditors: how often, how much is reviewed, what is
        overdue. Most uses first."""
        now = self._clock.now()
        overdue = (RequestRow.reviewed_at.is_(None)) & (RequestRow.review_due_at <= now)
        stmt = (
            select(
                RequestRow.requester,
                func.count(),
                func.count(RequestRow.reviewed_at),
                func.sum(case((overdue, 1), else_=0)),
                func.max(RequestRow.created_at),
            )
            .where(RequestRow.emergency.is_(True))
            .group_by(RequestRow.requester)
        )
        with self._store.read() as s:
            permissions.require_auditor(self._models.model(s), actor, "count emergency use")
            found = [
                EmergencyCount(
                    user=user,
                    uses=uses,
                    reviewed=reviewed,
                    awaiting_review=uses - reviewed,
                    overdue=int(late or 0),
                    last_used_at=last,
                )
                for user, uses, reviewed, late, last in s.execute(stmt)
            ]
        return sorted(found, key=lambda c: (-c.uses, c.user))
