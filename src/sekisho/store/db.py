"""Engines and transactions.

Two kinds of unit of work: `read()` and `write()`. On SQLite a write transaction starts with
BEGIN IMMEDIATE, so writers queue for the lock up front instead of failing half-way with
"database is locked"; reads run beside them (WAL). Writers of this process also queue on a
lock first: SQLite's own busy handler sleeps and retries, which starves unlucky writers for
seconds under load. On PostgreSQL both are plain transactions and code that needs a row lock
asks for it (`SELECT ... FOR UPDATE`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self._prepare_sqlite_file(parsed.database)
            self._writer = self._sqlite_engine(url, "BEGIN IMMEDIATE", echo)
            self._reader = self._sqlite_engine(url, "BEGIN", echo)
        elif self.dialect == "postgresql":
            # A database host that does not answer is an outage after a few seconds, not a
            # call that hangs for the kernel's TCP timeout (the URL may set its own).
            connect = {} if "connect_timeout" in parsed.query else {"connect_timeout": 5}
            engine = create_engine(
                url, echo=echo, pool_pre_ping=True, pool_size=10, connect_args=connect
            )
            self._writer = self._reader = engine
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)

    @property
    def engine(self) -> Engine:
        return self._writer

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine: the writer, and on SQLite the reader beside it."""
        return (self._writer,) if self._reader is self._writer else (self._writer, self._reader)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that may change data: committed on success, rolled back on error."""
        if self._write_lock is None:
            with self._write_sessions() as session, session.begin():
                yield session
            return
        with self._write_lock, self._write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def read_rows(self) -> Iterator[Connection]:
        """A read transaction without the ORM, for hot paths that read plain columns (a
        gateway checks the store for every forwarded connection)."""
        with self._reader.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read transaction that sees one moment throughout, for reads that span many
        statements (walking the audit chain, then its head). SQLite's read transaction is
        one already; PostgreSQL's default (read committed) sees each statement's own moment,
        so there it is REPEATABLE READ."""
        with self._read_sessions() as session, session.begin():
            if self.is_postgres:
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    def dispose(self) -> None:
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()

    @staticmethod
    def _prepare_sqlite_file(database: str | None) -> None:
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                path.touch(mode=0o600)

    @staticmethod
    def _sqlite_engine(url: str, begin: str, echo: bool) -> Engine:
        # Pooled: closing the last connection makes SQLite checkpoint and delete the WAL, so
        # a connection per transaction would cost an open, a checkpoint and extra fsyncs.
        engine = create_engine(
            url,
            echo=echo,
            pool_size=8,
            max_overflow=8,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module; we issue BEGIN ourselves.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(begin)

        return engine
