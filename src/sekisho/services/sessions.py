"""Forwarding sessions on record: who reached which target, through which grant, how much.

The gateway calls `open`/`refuse`/`end`/`heartbeat`, and `standing` to ask the store whether
its live sessions may go on; people call `list_sessions` and `kill`. A session's start, kill
and end land in the audit trail. A kill is recorded first, as a fact in the store: the
gateway carrying the session honours it from there whichever process made it (at once by
event where one can travel, else at its next connection or periodic re-check). A gateway that
dies cannot record its sessions' ends, so any gateway reaps sessions whose heartbeat stopped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, and_, bindparam, or_, select

from sekisho.domain.access import AccessModel, Verb
from sekisho.domain.access_decisions import AccessDecision, decide_access
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Conflict, Forbidden, NotFound
from sekisho.domain.grants import GrantStatus, GrantWindow
from sekisho.domain.text import check_text
from sekisho.domain.timespec import iso
from sekisho.services import permissions
from sekisho.services.audit import AuditEvent
from sekisho.services.identity import login_ended
from sekisho.store.grants import active_at
from sekisho.store.tables import GrantRow, SessionRow, TokenRow

if TYPE_CHECKING:
    from sekisho.services.core import Core

ACTIVE, ENDED, FAILED = "active", "ended", "failed"
STALE_AFTER = timedelta(seconds=30)
KILL_REASON_MAX = 200
STANDING_BATCH = 500  # sessions per statement: far below SQLite's and PostgreSQL's limits


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
    killed_at: datetime | None  # a kill on record: the gateway carrying it cuts it
    killed_by: str | None
    kill_reason: str | None
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
class Carried:
    """A live session as a gateway carries it: what the store is asked about."""

    session_id: int
    user: str
    target: str
    grant_id: int | None  # the grant that carries it now, if any


@dataclass(frozen=True)
class Standing:
    """What the store says of a carried session now: go on under `decision`, or end."""

    session_id: int
    decision: AccessDecision | None  # what allows it now; None: it must end
    ended: str = ""  # why it must end
    withdrawn: bool = False  # it ends because access is denied (not its login, record or a kill)
    target_addr: tuple[str, int] | None = None  # where the model has the target now


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

    def standing(
        self, carried: Sequence[Carried], model: AccessModel | None = None
    ) -> tuple[dict[int, Standing], AccessModel]:
        """The store's truth for live sessions, in one read transaction however many: each
        one's login (revoked, expired, user gone), its record (killed, ended elsewhere) and
        the decision to connect now, under `model` (None: the one in the store now, read in
        the same transaction). Returns the standings and the model they were decided under."""
        core = self._core
        now = core.now()
        found: dict[int, Standing] = {}
        with core.db.read_rows() as connection:
            model = model or core.models.model(connection)
            for start in range(0, len(carried), STANDING_BATCH):
                batch = carried[start : start + STANDING_BATCH]
                found.update(_standing_of(connection, batch, model, now))
        return found, model

    # -- people's side --------------------------------------------------------------------

    def list_sessions(
        self, actor: Actor, *, active_only: bool = False, limit: int = 200
    ) -> list[SessionView]:
        core = self._core
        with core.db.read() as s:
            model = core.models.model(s)
            stmt = select(SessionRow).order_by(SessionRow.id.desc())
            if not permissions.is_auditor(model, actor):
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
            if row is None or not (row.user == actor.name or permissions.is_auditor(model, actor)):
                raise NotFound(f"no session #{session_id}")
            return SessionView.model_validate(row)

    def kill(self, actor: Actor, session_id: int, reason: str = "") -> SessionView:
        """An admin (or the session's own user) ends a live session: the kill goes on record
        (when, by whom, from where, why), then the gateway carrying the session cuts it. The
        session as on record is returned: still active until that gateway records the end."""
        core = self._core
        reason = check_text("reason", reason, max_length=KILL_REASON_MAX)
        with core.db.write() as s:
            model = core.models.model(s)
            row = s.get(SessionRow, session_id, with_for_update=True)
            if row is None or not (row.user == actor.name or permissions.is_auditor(model, actor)):
                raise NotFound(f"no session #{session_id}")
            if row.user != actor.name and not permissions.is_admin(model, actor):
                raise Forbidden("only admins may kill other people's sessions")
            if row.status != ACTIVE:
                raise Conflict(f"session #{session_id} is {row.status}")
            if row.killed_at is None:  # a second kill before the cut changes nothing
                row.killed_at, row.killed_by = core.now(), actor.name
                row.killed_from, row.kill_reason = actor.source[:256], reason or None
                core.audit(s, _killed_event(row, actor))
            view = SessionView.model_validate(row)
        core.publish(
            "session.kill",
            user=view.user,
            data={
                "session_id": str(session_id),
                "reason": killed(view.killed_by, view.kill_reason),
            },
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


def killed(by: str | None, reason: str | None) -> str:
    """A killed session's end reason, as the forwarder and the record show it."""
    return f"killed by {by}: {reason}" if reason else f"killed by {by}"


# The two statements of a re-check, built once: the sessions with their login tokens, and the
# grants that may allow them or carried them. Selected as columns, not entities: a re-check
# runs on every forwarded connection.
_SESSIONS_AND_LOGINS = (
    select(
        SessionRow.id,
        SessionRow.status,
        SessionRow.end_reason,
        SessionRow.killed_at,
        SessionRow.killed_by,
        SessionRow.kill_reason,
        TokenRow.user.label("login_user"),
        TokenRow.revoked_at,
        TokenRow.expires_at.label("login_expires_at"),
    )
    .outerjoin(TokenRow, TokenRow.id == SessionRow.token_id)
    .where(SessionRow.id.in_(bindparam("ids", expanding=True)))
)
_GRANTS = select(
    GrantRow.id,
    GrantRow.user,
    GrantRow.group_name,
    GrantRow.status,
    GrantRow.start_at,
    GrantRow.end_at,
    GrantRow.end_reason,
    GrantRow.end_note,
).where(
    or_(
        and_(
            GrantRow.user.in_(bindparam("users", expanding=True)),
            active_at(bindparam("now")),
        ),
        GrantRow.id.in_(bindparam("carriers", expanding=True)),
    )
)


def _standing_of(
    connection: Connection, batch: Sequence[Carried], model: AccessModel, now: datetime
) -> dict[int, Standing]:
    ids = {"ids": [c.session_id for c in batch]}
    rows = {r.id: r for r in connection.execute(_SESSIONS_AND_LOGINS, ids)}
    grants = connection.execute(
        _GRANTS,
        {
            "users": sorted({c.user for c in batch}),
            "carriers": sorted({c.grant_id for c in batch if c.grant_id is not None}),
            "now": now,
        },
    )
    live: dict[str, list[GrantWindow]] = defaultdict(list)
    by_id: dict[int, Any] = {}  # rows of _GRANTS
    for g in grants:
        by_id[g.id] = g
        if g.status == GrantStatus.ACTIVE:
            window = GrantWindow(
                g.id, g.user, g.group_name, GrantStatus(g.status), g.start_at, g.end_at
            )
            live[g.user].append(window)
    found = {}
    for c in batch:
        row = rows.get(c.session_id)
        ended = _ended_on_record(row, model, now)
        if ended is not None:
            found[c.session_id] = Standing(c.session_id, None, ended)
            continue
        decision = decide_access(model, c.user, Verb.CONNECT, c.target, live[c.user], now)
        target = model.target(c.target)
        if decision.allowed and target is not None:
            address = (target.host, target.port)
            found[c.session_id] = Standing(c.session_id, decision, target_addr=address)
        else:
            why = _withdrawn(by_id.get(c.grant_id or 0), decision)
            found[c.session_id] = Standing(c.session_id, None, why, withdrawn=True)
    return found


def _ended_on_record(row: Any, model: AccessModel, now: datetime) -> str | None:
    """Why the session must end whatever access says: its record or its login; or None.
    `row`: one of _SESSIONS_AND_LOGINS, or None."""
    if row is None:
        return "the session is not on record"
    if row.killed_at is not None:
        return killed(row.killed_by, row.kill_reason)
    if row.status != ACTIVE:
        return f"it ended elsewhere: {row.end_reason or row.status}"
    return login_ended(row.login_user, row.revoked_at, row.login_expires_at, model, now)


def _withdrawn(carrier: Any, decision: AccessDecision) -> str:
    """Why access is gone: the grant that carried the session ended (`carrier`, a row of
    _GRANTS, or None), or the decision's word."""
    if carrier is not None and carrier.status != GrantStatus.ACTIVE:
        how = carrier.end_reason or carrier.status
        note = (carrier.end_note or "")[:200]
        return (
            f"grant #{carrier.id} ended ({how}: {note})"
            if note
            else f"grant #{carrier.id} ended ({how})"
        )
    return f"access was withdrawn: {decision.reason}"


def _killed_event(row: SessionRow, actor: Actor) -> AuditEvent:
    return AuditEvent(
        "session.killed",
        actor.name,
        actor.source[:256],
        subject=row.user,
        request_id=row.request_id,
        grant_id=row.grant_id,
        object=row.target,
        detail={"target": row.target, "reason": row.kill_reason or ""},
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
