"""Forwarding sessions on record: who reached which target, through which grant, how much.

The gateway calls `open`/`refuse`/`end`/`heartbeat`; people call `list_sessions` and `kill`.
A session's start and end land in the audit trail. A gateway that dies cannot record its
sessions' ends, so any gateway reaps sessions whose heartbeat stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from sekisho.domain.actor import Actor
from sekisho.domain.decisions import AccessDecision
from sekisho.domain.errors import Conflict, Forbidden, NotFound
from sekisho.domain.timespec import iso
from sekisho.services import policy
from sekisho.services.audit import AuditEvent
from sekisho.store.tables import GrantRow, SessionRow

if TYPE_CHECKING:
    from sekisho.services.core import Core

ACTIVE, ENDED, FAILED = "active", "ended", "failed"
STALE_AFTER = timedelta(seconds=30)


class SessionView(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    user: str
    target: str
    grant_id: int | None
    request_id: int | None
    via: str
    client_addr: str
    local_addr: str
    target_addr: str
    status: str
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    bytes_up: int
    bytes_down: int
    connections: int


@dataclass(frozen=True)
class Opening:
    """What the gateway knows when a session opens."""

    user: str
    target: str
    token_id: str
    client_addr: str
    local_addr: str
    target_addr: str
    node: str
    expires_at: datetime


@dataclass(frozen=True)
class Counters:
    session_id: int
    bytes_up: int
    bytes_down: int
    connections: int


class SessionService:
    def __init__(self, core: Core) -> None:
        self._core = core

    # -- the gateway's side ---------------------------------------------------------------

    def open(self, opening: Opening, decision: AccessDecision) -> SessionView:
        core = self._core
        now = core.now()
        with core.db.write() as s:
            request_id = None
            if decision.grant_id is not None:
                request_id = s.scalar(
                    select(GrantRow.request_id).where(GrantRow.id == decision.grant_id)
                )
            row = self._row(opening, now, ACTIVE)
            row.grant_id, row.request_id, row.via = decision.grant_id, request_id, decision.reason
            s.add(row)
            s.flush()
            core.audit(s, _event("session.started", row, {"end": iso(row.expires_at)}))
            return SessionView.model_validate(row)

    def refuse(self, opening: Opening, reason: str) -> SessionView:
        """Record a session that was allowed but could not start (the target is down)."""
        core = self._core
        now = core.now()
        with core.db.write() as s:
            row = self._row(opening, now, FAILED)
            row.via, row.ended_at, row.end_reason = "", now, reason[:300]
            s.add(row)
            s.flush()
            core.audit(s, _event("session.failed", row, {"error": reason[:500]}, "failed"))
            return SessionView.model_validate(row)

    def end(self, counters: Counters, reason: str) -> None:
        core = self._core
        now = core.now()
        with core.db.write() as s:
            row = s.get(SessionRow, counters.session_id, with_for_update=True)
            if row is None or row.status != ACTIVE:
                return
            _apply(row, counters, now)
            row.status, row.ended_at, row.end_reason = ENDED, now, reason[:300]
            detail: dict[str, str | int | bool | None] = {
                "reason": reason[:300],
                "count": row.connections,
                "output": f"{row.bytes_up} bytes up, {row.bytes_down} bytes down",
            }
            core.audit(s, _event("session.ended", row, detail))

    def heartbeat(self, live: list[Counters]) -> None:
        """The gateway is alive and carrying these sessions; record their counters."""
        if not live:
            return
        core = self._core
        now = core.now()
        with core.db.write() as s:
            for counters in live:
                row = s.get(SessionRow, counters.session_id)
                if row is not None and row.status == ACTIVE:
                    _apply(row, counters, now)

    def reap_stale(self) -> list[int]:
        """End sessions whose gateway stopped beating: they carry nothing any more."""
        core = self._core
        now = core.now()
        with core.db.write() as s:
            rows = list(
                s.scalars(
                    select(SessionRow)
                    .where(SessionRow.status == ACTIVE, SessionRow.last_seen < now - STALE_AFTER)
                    .with_for_update()
                )
            )
            for row in rows:
                row.status, row.ended_at = ENDED, row.last_seen
                row.end_reason = "the gateway carrying it stopped"
                core.audit(s, _event("session.ended", row, {"reason": row.end_reason}))
            return [r.id for r in rows]

    # -- people's side --------------------------------------------------------------------

    def list_sessions(
        self, actor: Actor, *, active_only: bool = False, limit: int = 200
    ) -> list[SessionView]:
        core = self._core
        with core.db.read() as s:
            model = core.models.model(s)
            stmt = select(SessionRow).order_by(SessionRow.id.desc())
            if not policy.is_auditor(model, actor):
                stmt = stmt.where(SessionRow.user == actor.name)
            if active_only:
                stmt = stmt.where(SessionRow.status == ACTIVE)
            rows = s.scalars(stmt.limit(max(1, min(limit, 5000))))
            return [SessionView.model_validate(r) for r in rows]

    def get(self, actor: Actor, session_id: int) -> SessionView:
        core = self._core
        with core.db.read() as s:
            model = core.models.model(s)
            row = s.get(SessionRow, session_id)
            if row is None or not (row.user == actor.name or policy.is_auditor(model, actor)):
                raise NotFound(f"no session #{session_id}")
            return SessionView.model_validate(row)

    def kill(self, actor: Actor, session_id: int) -> SessionView:
        """An admin (or the session's own user) ends a live session now."""
        core = self._core
        view = self.get(actor, session_id)
        with core.db.read() as s:
            is_admin = policy.is_admin(core.models.model(s), actor)
        if view.user != actor.name and not is_admin:
            raise Forbidden("only admins may kill other people's sessions")
        if view.status != ACTIVE:
            raise Conflict(f"session #{session_id} is {view.status}")
        core.publish(
            "session.kill",
            user=view.user,
            data={"session_id": str(session_id), "reason": f"killed by {actor.name}"},
        )
        return view

    @staticmethod
    def _row(opening: Opening, now: datetime, status: str) -> SessionRow:
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


def _event(
    action: str, row: SessionRow, detail: dict[str, str | int | bool | None], outcome: str = "ok"
) -> AuditEvent:
    return AuditEvent(
        action,
        row.user,
        row.client_addr,
        outcome=outcome,
        subject=row.user,
        request_id=row.request_id,
        grant_id=row.grant_id,
        object=row.target,
        detail={"target": row.target, **detail},
    )
