"""Rows that many effects append in one transaction (timeline entries, audit entries),
inserted together, in the order appended, before anything else in the transaction reads or
commits.

Ending 10,000 grants appends 40,000 such rows. As ORM objects each costs an instance, its
bookkeeping and its share of a flush; appended here they cost one multi-row INSERT per table
and flush. Nothing reads them back as objects: they are written once and never changed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.orm import ORMExecuteState, Session

from sekisho.store.tables import Base

_PENDING = "sekisho.bulk"  # session.info: {table: [row values, ...]} not yet inserted


def append(session: Session, table: type[Base], values: dict[str, Any]) -> None:
    """Queue one row of `table` (a mapped class) for insertion in `session`'s transaction."""
    pending: dict[type[Base], list[dict[str, Any]]] = session.info.setdefault(_PENDING, {})
    pending.setdefault(table, []).append(values)


def insert_pending(session: Session) -> None:
    """Insert what is queued now (before a read that may see it, or the commit)."""
    pending: dict[type[Base], list[dict[str, Any]]] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    connection = session.connection()
    for table, rows in pending.items():
        connection.execute(insert(table), rows)


@event.listens_for(Session, "do_orm_execute")
def _before_a_statement(state: ORMExecuteState) -> None:
    insert_pending(state.session)


@event.listens_for(Session, "before_commit")
def _before_the_commit(session: Session) -> None:
    insert_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_a_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)
