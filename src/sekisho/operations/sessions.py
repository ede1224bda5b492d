"""Forwarding sessions on record: OpenSession, RefuseSession, EndSession, RecordHeartbeat,
ReapStaleSessions (the gateway's side) and KillSession (people's).

A kill is recorded first, as a fact in the store: the gateway carrying the session honours it
from there whichever process made it (at once by event where one can travel, else at its
next connection or periodic re-check). A gateway that dies cannot record its sessions' ends,
so any gateway reaps sessions whose heartbeat stopped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel
from sekisho.domain.access_decisions import AccessDecision
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Conflict, Forbidden, NotFound
from sekisho.domain.events import (
    SessionEnded,
    SessionFailed,
    SessionKilled,
    SessionReaped,
    SessionStarted,
)
from sekisho.domain.sessions import (
    ACTIVE,
    ENDED,
    FAILED,
    KILL_REASON_MAX,
    STALE_AFTER,
    Counters,
    Opening,
)
from sekisho.domain.text import check_text
from sekisho.ports import ModelSource
from sekisho.queries.sessions import SessionView
from sekisho.services import permissions
from sekisho.store.tables import GrantRow, SessionRow
from sekisho.store.unit_of_work import Store


class OpenSession:
    """The gateway starts forwarding a session the decision allows."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self, opening: Opening, decision: AccessDecision) -> SessionView:
        now = self._clock.now()
        with self._store.write() as uow:
            s = uow.session
            request_id = None
            if decision.grant_id is not None:
                request_id = s.scalar(
                    select(GrantRow.request_id).where(GrantRow.id == decision.grant_id)
                )
            row = _new_row(opening, now, ACTIVE)
            row.grant_id, row.request_id, row.via = decision.grant_id, request_id, decision.reason
            s.add(row)
            s.flush()
            uow.record(SessionStarted(now, row.id))
            return SessionView.model_validate(row)


class RefuseSession:
    """A session that was allowed but could not start (the target is down), on record."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self, opening: Opening, reason: str) -> SessionView:
        now = self._clock.now()
        with self._store.write() as uow:
            row = _new_row(opening, now, FAILED)
            row.via, row.ended_at, row.end_reason = "", now, reason[:300]
            uow.session.add(row)
            uow.session.flush()
            uow.record(SessionFailed(now, row.id, reason[:500]))
            return SessionView.model_validate(row)


class EndSession:
    """The gateway ended a session: its last counters and why (ended already: nothing)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self, counters: Counters, reason: str) -> None:
        now = self._clock.now()
        with self._store.write() as uow:
            row = uow.session.get(SessionRow, counters.session_id, with_for_update=True)
            if row is None or row.status != ACTIVE:
                return
            _apply(row, counters, now)
            row.status, row.ended_at, row.end_reason = ENDED, now, reason[:300]
            uow.record(SessionEnded(now, row.id, reason[:300]))


class RecordHeartbeat:
    """The gateway is alive and carrying these sessions: their counters, on record."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self, live: list[Counters]) -> None:
        if not live:
            return
        now = self._clock.now()
        with self._store.write() as uow:
            for counters in live:
                row = uow.session.get(SessionRow, counters.session_id)
                if row is not None and row.status == ACTIVE:
                    _apply(row, counters, now)


class ReapStaleSessions:
    """End the sessions whose gateway stopped beating: they carry nothing any more."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self) -> list[int]:
        now = self._clock.now()
        with self._store.write() as uow:
            rows = list(
                uow.session.scalars(
                    select(SessionRow)
                    .where(SessionRow.status == ACTIVE, SessionRow.last_seen < now - STALE_AFTER)
                    .with_for_update()
                )
            )
            for row in rows:
                row.status, row.ended_at = ENDED, row.last_seen
                row.end_reason = "the gateway carrying it stopped"
                uow.record(SessionReaped(now, row.id))
            return [r.id for r in rows]


class KillSession:
    """An admin (or the session's own user) ends a live session: the kill goes on record
    (when, by whom, from where, why), then the gateway carrying the session cuts it. The
    session as on record is returned: still active until that gateway records the end."""

    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def execute(self, actor: Actor, session_id: int, reason: str = "") -> SessionView:
        reason = check_text("reason", reason, max_length=KILL_REASON_MAX)
        with self._store.write() as uow:
            model = self._models.model(uow.session)
            row = uow.session.get(SessionRow, session_id, with_for_update=True)
            row = _may_kill(model, actor, row, session_id)
            now = self._clock.now()
            before = row.killed_at is not None  # a second kill before the cut changes nothing
            if not before:
                row.killed_at, row.killed_by = now, actor.name
                row.killed_from, row.kill_reason = actor.source[:256], reason or None
            uow.record(SessionKilled(now, row.id, actor, on_record_before=before))
            return SessionView.model_validate(row)


def _may_kill(
    model: AccessModel, actor: Actor, row: SessionRow | None, session_id: int
) -> SessionRow:
    if row is None or not (row.user == actor.name or permissions.is_auditor(model, actor)):
        raise NotFound(f"no session #{session_id}")
    if row.user != actor.name and not permissions.is_admin(model, actor):
        raise Forbidden("only admins may kill other people's sessions")
    if row.status != ACTIVE:
        raise Conflict(f"session #{session_id} is {row.status}")
    return row


def _new_row(opening: Opening, now: datetime, status: str) -> SessionRow:
    return SessionRow(
        user=opening.user,
        target=opening.target,
        token_id=opening.token_id,
        client_addr=opening.client_addr[:128],
        local_addr=opening.local_addr[:128],
        target_addr=opening.target_addr[:300],
        node=opening.node[:256],
        status=status,
        started_at=now,
        expires_at=opening.expires_at,
        last_seen=now,
        bytes_up=0,
        bytes_down=0,
        connections=0,
    )


def _apply(row: SessionRow, counters: Counters, now: datetime) -> None:
    row.bytes_up, row.bytes_down = counters.bytes_up, counters.bytes_down
    row.connections, row.last_seen = counters.connections, now
