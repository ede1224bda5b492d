"""Forwarding sessions as interfaces call them: who reached which target, through which
grant, how much.

The gateway calls `open`/`refuse`/`end`/`heartbeat`/`reap_stale`, and `standing` to ask the
store whether its live sessions may go on; people call `list_sessions`, `get` and `kill`.
Each verb is an operation (`operations.sessions`) or a query (`queries.sessions`); a
session's start, kill and end land in the audit trail through their effect handlers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sekisho.domain.access import AccessModel
from sekisho.domain.access_decisions import AccessDecision
from sekisho.domain.actor import Actor
from sekisho.domain.sessions import (
    Carried,
    Counters,
    Opening,
    Standing,
)
from sekisho.operations.sessions import (
    EndSession,
    KillSession,
    OpenSession,
    ReapStaleSessions,
    RecordHeartbeat,
    RefuseSession,
)
from sekisho.queries.sessions import SessionQueries, SessionView


@dataclass(frozen=True)
class SessionOperations:
    open: OpenSession
    refuse: RefuseSession
    end: EndSession
    heartbeat: RecordHeartbeat
    reap_stale: ReapStaleSessions
    kill: KillSession


class SessionService:
    def __init__(self, operations: SessionOperations, queries: SessionQueries) -> None:
        self._ops, self._queries = operations, queries

    # -- the gateway's side ---------------------------------------------------------------

    def open(self, opening: Opening, decision: AccessDecision) -> SessionView:
        return self._ops.open.execute(opening, decision)

    def refuse(self, opening: Opening, reason: str) -> SessionView:
        """Record a session that was allowed but could not start (the target is down)."""
        return self._ops.refuse.execute(opening, reason)

    def end(self, counters: Counters, reason: str) -> None:
        self._ops.end.execute(counters, reason)

    def heartbeat(self, live: list[Counters]) -> None:
        """The gateway is alive and carrying these sessions; record their counters."""
        self._ops.heartbeat.execute(live)

    def reap_stale(self) -> list[int]:
        """End sessions whose gateway stopped beating: they carry nothing any more."""
        return self._ops.reap_stale.execute()

    def standing(
        self, carried: Sequence[Carried], model: AccessModel | None = None
    ) -> tuple[dict[int, Standing], AccessModel]:
        """The store's truth for live sessions (`SessionQueries.standing`)."""
        return self._queries.standing(carried, model)

    # -- people's side --------------------------------------------------------------------

    def list_sessions(
        self, actor: Actor, *, active_only: bool = False, limit: int = 200
    ) -> list[SessionView]:
        return self._queries.list_sessions(actor, active_only=active_only, limit=limit)

    def get(self, actor: Actor, session_id: int) -> SessionView:
        return self._queries.get(actor, session_id)

    def kill(self, actor: Actor, session_id: int, reason: str = "") -> SessionView:
        """End a live session (`KillSession`): on record, then cut by its gateway."""
        return self._ops.kill.execute(actor, session_id, reason)
