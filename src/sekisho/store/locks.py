"""Locks in the store: the one place the SQL for "in force at t" is written.

`domain.locks.Lock.in_force` says the same in Python; every decision reads the locks not
removed (a handful) and the domain decides for its instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select
from sqlalchemy.orm import Session

from sekisho.domain.locks import Lock, LockKind
from sekisho.store.tables import LockRow

_COLUMNS = (
    LockRow.id,
    LockRow.kind,
    LockRow.subject,
    LockRow.reason,
    LockRow.created_by,
    LockRow.created_at,
    LockRow.until,
)
# Built once: every access decision and every gateway re-check runs it.
_NOT_REMOVED = select(*_COLUMNS).where(LockRow.removed_at.is_(None)).order_by(LockRow.id)


def value(row: Any) -> Lock:
    """A LockRow, or a row of `_COLUMNS`, as the domain's value."""
    return Lock(
        id=row.id,
        kind=LockKind(row.kind),
        subject=row.subject,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        until=row.until,
    )


def in_force(db: Session | Connection, at: datetime) -> list[Lock]:
    """The locks in force at `at`, oldest first."""
    found = (value(row) for row in db.execute(_NOT_REMOVED))
    return [lock for lock in found if lock.in_force(at)]


def listed(session: Session, at: datetime, *, everything: bool = False) -> Sequence[LockRow]:
    """Newest first: the locks in force at `at`, or every lock ever placed."""
    stmt = select(LockRow).order_by(LockRow.id.desc())
    if not everything:
        stmt = stmt.where(
            LockRow.removed_at.is_(None),
            LockRow.created_at <= at,
            or_(LockRow.until.is_(None), LockRow.until > at),
        )
    return session.scalars(stmt).all()


def lock(session: Session, lock_id: int) -> LockRow | None:
    """One lock, locked for this transaction (two removals of it do not both succeed)."""
    return session.scalars(
        select(LockRow).where(LockRow.id == lock_id).with_for_update()
    ).one_or_none()
