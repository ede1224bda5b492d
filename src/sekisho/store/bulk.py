"""Rows that many effects append in one transaction (timeline entries, audit entries),
inserted together, in the order appended, and rows a batch removes (the local directory's
memberships and tags), deleted together: before anything else in the transaction reads or
commits.

Ending 10,000 grants appends 40,000 such rows and removes 20,000. As ORM objects each costs
an instance, its bookkeeping and its share of a flush; queued here they cost one statement
per table. Nothing reads them back as objects: they are written once and never changed.

Each statement is compiled once per dialect and its values converted a column at a time by
the columns' own bind processors (the conversions SQLAlchemy applies), then handed to the
driver's executemany: the rows are stored exactly as `connection.execute(insert(t), rows)`
stores them, without a per-row parameter set built and checked by the compiler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, and_, bindparam, delete, event, insert
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql.dml import UpdateBase

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
        values = [{f"key_{name}": value for name, value in key.items()} for key in keys]
        _execute_many(connection, ("delete", table, tuple(keys[0])), values)
    for table, rows in (pending or {}).items():
        _execute_many(connection, ("insert", table, tuple(rows[0])), rows)


# -- one statement, many rows, straight to the driver -----------------------------------------

_Kind = tuple[str, type[Base], tuple[str, ...]]  # insert | delete, the table, the row's keys
_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    sql: str
    keys: tuple[str, ...]  # the rows' keys, in the order the statement takes their values
    processors: tuple[_Processor, ...]
    positional: bool  # the driver takes a sequence per row (else a mapping, by `names`)
    names: tuple[str, ...]  # the statement's parameter names, for a mapping


_PLANS: dict[tuple[str, str, str, _Kind], _Plan | None] = {}  # by dialect, driver, paramstyle


def _statement(kind: _Kind) -> UpdateBase:
    verb, table, keys = kind
    if verb == "insert":
        return insert(table)
    columns = table.__table__.c
    return delete(table).where(and_(*(columns[k] == bindparam(f"key_{k}") for k in keys)))


def _plan(dialect: Dialect, kind: _Kind) -> _Plan | None:
    """How to run `kind` on this dialect; None if its rows do not fill every parameter
    (a column default to apply): then SQLAlchemy runs it."""
    cache_key = (dialect.name, dialect.driver, dialect.paramstyle, kind)
    if cache_key in _PLANS:
        return _PLANS[cache_key]
    compiled = _statement(kind).compile(dialect=dialect, column_keys=list(kind[2]))
    order = list(compiled.positiontup or []) if compiled.positional else list(compiled.binds)
    plan = None
    if sorted(order) == sorted(_row_keys(kind)):
        processors = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in order
        )
        escaped = compiled.escaped_bind_names
        names = tuple(escaped.get(name, name) for name in order)
        plan = _Plan(compiled.string, tuple(order), processors, compiled.positional, names)
    _PLANS[cache_key] = plan
    return plan


def _row_keys(kind: _Kind) -> list[str]:
    verb, _table, keys = kind
    return [f"key_{k}" for k in keys] if verb == "delete" else list(keys)


def _execute_many(connection: Connection, kind: _Kind, rows: Sequence[dict[str, Any]]) -> None:
    plan = _plan(connection.dialect, kind)
    if plan is None or any(len(row) != len(kind[2]) for row in rows):
        connection.execute(_statement(kind), list(rows))
        return
    columns = []
    for key, process in zip(plan.keys, plan.processors, strict=True):
        values = [row[key] for row in rows]
        columns.append(values if process is None else _converted(values, process))
    params: list[Any] = list(zip(*columns, strict=True))
    if not plan.positional:
        params = [dict(zip(plan.names, values, strict=True)) for values in params]
    connection.exec_driver_sql(plan.sql, params)


def _converted(values: list[Any], process: Callable[[Any], Any]) -> list[Any]:
    """`process` of each value, once for a run of the same object (the entries an event's
    effects write share its instant: a batch's 2,000 `grant.ended` rows bind one)."""
    found: list[Any] = []
    last: object = _converted  # stands for no value yet: never a row's value
    done = None
    for value in values:
        if value is not last:
            last, done = value, process(value)
        found.append(done)
    return found


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
