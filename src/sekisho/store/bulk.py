"""Rows that many effects append in one transaction (timeline entries, audit entries),
inserted together, in the order appended, and rows a batch removes (the local directory's
memberships and tags), deleted together: before anything else in the transaction reads or
commits.

Ending 10,000 grants appends 40,000 such rows and removes 20,000. As ORM objects each costs
an instance, its bookkeeping and its share of a flush; queued here they cost one statement
per table. Nothing reads them back as objects: they are written once and never changed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, delete, event, insert
from sqlalchemy.orm import ORMExecuteState, Session

from sekisho.store.tables import Base

_PENDING = "sekisho.bulk"  # session.info: {table: [row values, ...]} not yet inserted
_REMOVALS = "sekisho.bulk.removals"  # session.info: {table: [key values, ...]} to delete


def append(session: Session, table: type[Base], values: dict[str, Any]) -> None:
    """Queue one row of `table` (a mapped class) for insertion in `session`'s transaction."""
    pending: dict[type[Base], list[dict[str, Any]]] = session.info.setdefault(_PENDING, {})
    pending.setdefault(table, []).append(values)


def remove(session: Session, table: type[Base], key: dict[str, Any]) -> None:
    """Queue the deletion of the row of `table` whose columns have these values (its key)."""
    queued: dict[type[Base], list[dict[str, Any]]] = session.info.setdefault(_REMOVALS, {})
    queued.setdefault(table, []).append(key)


def write_pending(session: Session) -> None:
    """Write what is queued now (before a read that may see it, or the commit): removals
    first, so a row removed and then added again in one transaction is there at the end."""
    removals: dict[type[Base], list[dict[str, Any]]] | None = session.info.pop(_REMOVALS, None)
    pending: dict[type[Base], list[dict[str, Any]]] | None = session.info.pop(_PENDING, None)
    if not pending and not removals:
        return
    connection = session.connection()
    for table, keys in (removals or {}).items():
        columns = table.__table__.c
        match = and_(*(columns[name] == bindparam(f"key_{name}") for name in keys[0]))
        values = [{f"key_{name}": value for name, value in key.items()} for key in keys]
        connection.execute(delete(table).where(match), values)
    for table, rows in (pending or {}).items():
        connection.execute(insert(table), rows)


@event.listens_for(Session, "do_orm_execute")
def _before_a_statement(state: ORMExecuteState) -> None:
    write_pending(state.session)


@event.listens_for(Session, "before_commit")
def _before_the_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_a_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_REMOVALS, None)
