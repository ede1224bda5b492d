"""Locks, the kill switch: PlaceLock and RemoveLock.

Placing a lock is one audited act in one transaction: the lock goes in force, a locked user's
logins end, the open requests it covers close, and every active grant it covers starts ending
(access stops at the commit: decisions read the locks and honour only active grants). After
the commit the provider removes the memberships through `EndGrants`, the one way grants end,
and a locked user's brokered role sessions are denied. A provider that does not confirm
leaves its grants `ending` (still denied) and is retried; the outcome reports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel, Group, GroupKind, TemplateAction
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Conflict, InvalidInput, NotFound, ProviderFailure
from sekisho.domain.events import LockPlaced, LockRemoved, RequestLocked
from sekisho.domain.grants import EndReason
from sekisho.domain.locks import Lock, LockKind, check_subject, lock_end
from sekisho.domain.requests import RequestStatus
from sekisho.domain.text import SHORT_TEXT, check_text
from sekisho.domain.timespec import zone
from sekisho.operations.grants import EndGrants, EndResult
from sekisho.ports import DenyRoleSessions, ModelSource, RevokeRoleSessions
from sekisho.services import permissions
from sekisho.store import grants, requests
from sekisho.store import locks as stored_locks
from sekisho.store.tables import LockRow, RequestRow, TokenRow
from sekisho.store.unit_of_work import Store, UnitOfWork

# What led to a lock, recorded in its transaction before it (a received signal's `jti`).
Cause = Callable[[UnitOfWork, datetime], None]
REASON_MAX = SHORT_TEXT  # it is part of every refusal the lock causes
# A request that waits (for approval, or approved for its start) closes when a lock covers it.
_CLOSES = {
    RequestStatus.PENDING_APPROVAL: RequestStatus.REJECTED,
    RequestStatus.APPROVED: RequestStatus.FAILED,
    RequestStatus.SCHEDULED: RequestStatus.FAILED,
}


@dataclass
class LockOutcome:
    lock_id: int
    tokens_revoked: int = 0
    requests_closed: list[int] = field(default_factory=list)
    grants: EndResult = field(default_factory=EndResult)
    role_sessions: list[str] = field(default_factory=list)  # what was denied at AWS
    errors: list[str] = field(default_factory=list)  # what did not confirm (retried)


class PlaceLock:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        end: EndGrants,
        revoke_role_sessions: RevokeRoleSessions,
        deny_role_sessions: DenyRoleSessions,
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._end, self._revoke, self._deny_role = end, revoke_role_sessions, deny_role_sessions

    def execute(
        self,
        actor: Actor,
        kind: str,
        subject: str,
        reason: str,
        *,
        until: str | None = None,
        duration: str | None = None,
        cause: Cause | None = None,
    ) -> LockOutcome:
        """Lock `subject` (a user, target, group or ACCOUNT/ROLE) until `until` or for
        `duration` (neither: until removed). Refused, with nothing changed, for an unknown
        subject, an empty reason, an end in the past, or an actor without the permission.
        `cause` records what led to the lock (a received signal) in the lock's transaction,
        first: if it refuses, nothing is locked."""
        lock_kind = _kind(kind)
        subject = check_text("subject", subject or "", max_length=SHORT_TEXT)
        reason = check_text("reason", (reason or "").strip(), max_length=REASON_MAX)
        if not reason:
            raise InvalidInput.one(
                "reason", "required", "say why: everyone the lock refuses is told the reason"
            )
        with self._models.one_version():  # its transactions and the endings' checks share one
            return self._place(actor, lock_kind, subject, reason, (until, duration), cause)

    def _place(
        self,
        actor: Actor,
        lock_kind: LockKind,
        subject: str,
        reason: str,
        end: tuple[str | None, str | None],
        cause: Cause | None,
    ) -> LockOutcome:
        now = self._clock.now()
        with self._store.write() as uow:
            if cause is not None:
                cause(uow, now)
            model = self._models.model(uow.session)
            permissions.require_lock(model, actor, "place locks")
            check_subject(model, lock_kind, subject)
            ends = lock_end(*end, now, zone(model.settings.timezone))
            lock = _insert(uow.session, actor, lock_kind, subject, reason, now, ends)
            outcome = LockOutcome(lock.id, _end_logins(uow.session, lock, now))
            covered = _covered_grants(uow.session, model, lock)
            uow.record(LockPlaced(now, lock, actor, outcome.tokens_revoked, len(covered)))
            outcome.requests_closed = _close_requests(uow, model, lock, now)
            endings = self._end.start(uow, covered, EndReason.LOCKED, actor, lock.message)
        outcome.grants = self._end.finish(endings, actor)
        outcome.errors = [f"grant #{i}: {e}" for i, e in outcome.grants.errors.items()]
        self._deny_standing_role_sessions(model, lock, now, outcome)
        return outcome

    def _deny_standing_role_sessions(
        self, model: AccessModel, lock: Lock, now: datetime, outcome: LockOutcome
    ) -> None:
        """Role sessions that came from standing groups stop too (a grant's are denied as it
        ends): a locked user's, a locked standing group's members', a locked role's."""
        if lock.kind is LockKind.ROLE:
            users = sorted({m for g in _standing_assuming(model, lock.subject) for m in g.members})
            self._denied(outcome, lock.subject, lambda: self._deny_role(lock.subject, users, now))
            return
        for user, group in _standing_pairs(model, lock):
            self._denied(outcome, group, functools.partial(self._revoke, user, group, now))

    @staticmethod
    def _denied(outcome: LockOutcome, what: str, deny: Callable[[], list[str]]) -> None:
        try:
            outcome.role_sessions += deny()
        except ProviderFailure as exc:
            outcome.errors.append(f"role sessions of {what}: {exc.message}")


def _standing_assuming(model: AccessModel, ref: str) -> list[Group]:
    return [g for g in model.groups if g.kind is GroupKind.STANDING and ref in g.permissions.assume]


def _standing_pairs(model: AccessModel, lock: Lock) -> list[tuple[str, str]]:
    """(user, standing group) whose role sessions the lock ends: a user's standing groups, or
    a locked standing group's members."""
    if lock.kind is LockKind.USER:
        groups = model.standing_groups_of(lock.subject)
        return [(lock.subject, g.name) for g in groups if g.permissions.assume]
    found = model.group(lock.subject) if lock.kind is LockKind.GROUP else None
    if found is None or found.kind is not GroupKind.STANDING or not found.permissions.assume:
        return []
    return [(member, found.name) for member in found.members]


class RemoveLock:
    """Lift a lock early. Nothing it ended comes back: access is asked for again."""

    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def execute(self, actor: Actor, lock_id: int) -> None:
        now = self._clock.now()
        with self._store.write() as uow:
            model = self._models.model(uow.session)
            permissions.require_lock(model, actor, "remove locks")
            row = stored_locks.lock(uow.session, lock_id)
            if row is None:
                raise NotFound(f"no lock #{lock_id}")
            if row.removed_at is not None:
                raise Conflict(f"lock #{lock_id} was removed by {row.removed_by} already")
            lock = stored_locks.value(row)
            if not lock.in_force(now):
                raise Conflict(f"lock #{lock_id} ran out already; nothing to remove")
            row.removed_at, row.removed_by = now, actor.name
            uow.record(LockRemoved(now, lock, actor))


def _kind(kind: str) -> LockKind:
    try:
        return LockKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in LockKind)
        raise InvalidInput.one(
            "kind", "unknown_kind", f"{kind[:40]!r} is not a kind of lock: use {kinds}"
        ) from None


def _insert(
    s: Session,
    actor: Actor,
    kind: LockKind,
    subject: str,
    reason: str,
    now: datetime,
    until: datetime | None,
) -> Lock:
    row = LockRow(
        kind=kind.value,
        subject=subject,
        reason=reason,
        created_by=actor.name,
        created_from=actor.source[:256],
        created_at=now,
        until=until,
    )
    s.add(row)
    s.flush()
    return stored_locks.value(row)


def _end_logins(s: Session, lock: Lock, now: datetime) -> int:
    """A locked user's logins end with the lock; how many were live."""
    if lock.kind is not LockKind.USER:
        return 0
    ended = s.execute(
        update(TokenRow)
        .where(TokenRow.user == lock.subject, TokenRow.revoked_at.is_(None))
        .where(TokenRow.expires_at > now)
        .values(revoked_at=now)
    )
    return int(getattr(ended, "rowcount", 0) or 0)


def _close_requests(uow: UnitOfWork, model: AccessModel, lock: Lock, now: datetime) -> list[int]:
    """Close the waiting grant requests the lock covers (by subject, requester or group)."""
    rows = uow.session.scalars(
        select(RequestRow)
        .where(
            RequestRow.status.in_(list(_CLOSES)),
            RequestRow.action == TemplateAction.GRANT.value,
        )
        .order_by(RequestRow.id)
        .with_for_update()
    )
    closed = []
    for row in rows:
        covered = lock.covers_membership(model, row.subject, row.group_name)
        if not (covered or lock.covers_user(row.requester)):
            continue
        requests.move(row, _CLOSES[RequestStatus(row.status)], now)
        uow.record(RequestLocked(now, row.id, lock))
        closed.append(row.id)
    return closed


def _covered_grants(s: Session, model: AccessModel, lock: Lock) -> list[int]:
    if lock.kind is LockKind.USER:
        return grants.lock_active_of(s, user=lock.subject)
    covered = [g.name for g in model.groups if lock.covers_group(g)]
    return grants.lock_active_of(s, groups=covered) if covered else []
