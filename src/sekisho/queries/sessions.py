"""Reading forwarding sessions: the store's truth for the live ones a gateway carries (its
re-check), and the record as people may see it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, and_, bindparam, or_, select

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel, Verb
from sekisho.domain.access_decisions import AccessDecision, decide_access
from sekisho.domain.actor import Actor
from sekisho.domain.errors import NotFound
from sekisho.domain.grants import GrantStatus, GrantWindow
from sekisho.domain.identity import login_ended
from sekisho.domain.locks import Lock, lock_of_access
from sekisho.domain.sessions import ACTIVE, Carried, Standing, killed
from sekisho.ports import ModelSource
from sekisho.services import permissions
from sekisho.store import locks
from sekisho.store.db import Database
from sekisho.store.grants import WINDOW, active_at
from sekisho.store.tables import GrantRow, SessionRow, TokenRow

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


class SessionQueries:
    def __init__(self, db: Database, clock: Clock, models: ModelSource) -> None:
        self._db, self._clock, self._models = db, clock, models

    def standing(
        self, carried: Sequence[Carried], model: AccessModel | None = None
    ) -> tuple[dict[int, Standing], AccessModel]:
        """The store's truth for live sessions, in one read transaction however many: each
        one's login (revoked, expired, user gone), its record (killed, ended elsewhere) and
        the decision to connect now, under `model` (None: the one in the store now, read in
        the same transaction). Returns the standings and the model they were decided under."""
        now = self._clock.now()
        found: dict[int, Standing] = {}
        with self._db.read_rows() as connection:
            model = model or self._models.model(connection)
            in_force = locks.in_force(connection, now)
            for start in range(0, len(carried), STANDING_BATCH):
                batch = carried[start : start + STANDING_BATCH]
                found.update(_standing_of(connection, batch, model, now, in_force))
        return found, model

    def list_sessions(
        self, actor: Actor, *, active_only: bool = False, limit: int = 200
    ) -> list[SessionView]:
        with self._db.read() as s:
            model = self._models.model(s)
            stmt = select(SessionRow).order_by(SessionRow.id.desc())
            if not permissions.is_auditor(model, actor):
                stmt = stmt.where(SessionRow.user == actor.name)
            if active_only:
                stmt = stmt.where(SessionRow.status == ACTIVE)
            rows = s.scalars(stmt.limit(max(1, min(limit, 5000))))
            return [SessionView.model_validate(r) for r in rows]

    def get(self, actor: Actor, session_id: int) -> SessionView:
        with self._db.read() as s:
            model = self._models.model(s)
            row = s.get(SessionRow, session_id)
            if row is None or not (row.user == actor.name or permissions.is_auditor(model, actor)):
                raise NotFound(f"no session #{session_id}")
            return SessionView.model_validate(row)


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
    *WINDOW,
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
    connection: Connection,
    batch: Sequence[Carried],
    model: AccessModel,
    now: datetime,
    in_force: Sequence[Lock],
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
        locked = lock_of_access(in_force, c.user, Verb.CONNECT, c.target)
        # A lock says why first: a locked user's login ended with it, and "locked by ..." is
        # what the person at the forwarder needs to read.
        ended = locked.message if locked else _ended_on_record(row, model, now)
        if ended is not None:
            found[c.session_id] = Standing(c.session_id, None, ended)
            continue
        decision = decide_access(model, c.user, Verb.CONNECT, c.target, live[c.user], now, in_force)
        target = model.target(c.target)
        if decision.lock_id is not None:  # a locked group: its reason, not the grant's end
            found[c.session_id] = Standing(c.session_id, None, decision.reason)
        elif decision.allowed and target is not None:
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
