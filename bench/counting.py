"""What the services send to the database, counted from SQLAlchemy's own events.

`Counting(db)` listens on the real engines of a `Database` (`before_cursor_execute`, `begin`,
`commit`, `rollback`) and groups the statements by transaction; `take()` gives a `Tally` of
what ran since the last take: transactions (all, and those that wrote rows), statements by
kind, and reads of the access model (`... FROM access_models`).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, event

from sekisho.store.db import Database

BEGIN = re.compile(r"\s*BEGIN\b", re.IGNORECASE)
WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
MODEL_READ = re.compile(r"\bFROM\s+access_models\b", re.IGNORECASE)


@dataclass
class Transaction:
    statements: list[str] = field(default_factory=list)
    immediate: bool = False  # SQLite's BEGIN IMMEDIATE: it took the write lock

    @property
    def wrote(self) -> bool:
        return any(WRITES.match(s) for s in self.statements)


@dataclass(frozen=True)
class Tally:
    transactions: int
    writing: int  # transactions that wrote rows
    immediate: int  # SQLite: transactions begun with BEGIN IMMEDIATE (`db.write()`)
    statements: int
    by_kind: dict[str, int]  # SELECT, INSERT, UPDATE, DELETE, ...
    model_reads: int

    @classmethod
    def of(cls, transactions: list[Transaction]) -> Tally:
        statements = [s for t in transactions for s in t.statements]
        return cls(
            transactions=len(transactions),
            writing=sum(t.wrote for t in transactions),
            immediate=sum(t.immediate for t in transactions),
            statements=len(statements),
            by_kind=dict(Counter(s.split(None, 1)[0].upper() for s in statements)),
            model_reads=sum(bool(MODEL_READ.search(s)) for s in statements),
        )

    @classmethod
    def sum(cls, parts: list[Tally]) -> Tally:
        kinds: Counter[str] = Counter()
        for part in parts:
            kinds.update(part.by_kind)
        return cls(
            transactions=sum(p.transactions for p in parts),
            writing=sum(p.writing for p in parts),
            immediate=sum(p.immediate for p in parts),
            statements=sum(p.statements for p in parts),
            by_kind=dict(kinds),
            model_reads=sum(p.model_reads for p in parts),
        )

    def line(self) -> str:
        return (
            f"{self.transactions} transactions ({self.writing} writing), "
            f"{self.statements} statements, {self.model_reads} model reads"
        )


class Counting:
    """What the engines of one `Database` execute, from SQLAlchemy's events, by transaction.

    A transaction opens at the connection's `begin` event and closes at its `commit` or
    `rollback`; statements run between them belong to it. SQLite's BEGIN (issued by
    sekisho's own `begin` listener, before this one hears of the transaction) marks it."""

    def __init__(self, db: Database) -> None:
        self._engines = db.engines
        self._lock = threading.Lock()
        self._open: dict[int, Transaction] = {}
        self._immediate: set[int] = set()  # connections whose next transaction is IMMEDIATE
        self._done: list[Transaction] = []
        self._listeners: list[tuple[Any, str, Callable[..., None]]] = []

    def __enter__(self) -> Counting:
        for engine in self._engines:
            for name, listener in (
                ("before_cursor_execute", self._statement),
                ("begin", self._begin),
                ("commit", self._end),
                ("rollback", self._end),
            ):
                event.listen(engine, name, listener)
                self._listeners.append((engine, name, listener))
        return self

    def __exit__(self, *_exc: object) -> None:
        for engine, name, listener in self._listeners:
            event.remove(engine, name, listener)
        self._listeners.clear()

    def take(self) -> Tally:
        """The tally of the transactions since the last take (open ones included)."""
        with self._lock:
            done, self._done = self._done, []
            done += self._open.values()
            self._open = {key: Transaction() for key in self._open}
        return Tally.of(done)

    def _statement(self, conn: Connection, _cursor: Any, statement: str, *_rest: Any) -> None:
        with self._lock:
            if BEGIN.match(statement):
                if "IMMEDIATE" in statement.upper():
                    self._immediate.add(id(conn))
                return
            self._open.setdefault(id(conn), Transaction()).statements.append(statement)

    def _begin(self, conn: Connection) -> None:
        with self._lock:
            self._open[id(conn)] = Transaction(immediate=id(conn) in self._immediate)
            self._immediate.discard(id(conn))

    def _end(self, conn: Connection) -> None:
        with self._lock:
            transaction = self._open.pop(id(conn), None)
            if transaction is not None:
                self._done.append(transaction)
