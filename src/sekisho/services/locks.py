"""One membership change at a time per (user, group).

Activating one grant while ending an overlapping one must not interleave: the ending side could
remove the membership the activating side just added. Within one process a keyed lock is
enough (SQLite is single-node); on PostgreSQL an advisory lock extends it across nodes.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from sekisho.store.db import Database


class ProcessLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, user: str, group: str) -> Iterator[None]:
        key = (user, group)
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class DatabaseLocks(ProcessLocks):
    """The process lock, plus a PostgreSQL advisory lock when the database is shared."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self._db = db

    @contextmanager
    def hold(self, user: str, group: str) -> Iterator[None]:
        with super().hold(user, group):
            if not self._db.is_postgres:
                yield
                return
            digest = hashlib.sha256(f"{user}\0{group}".encode()).digest()
            key = int.from_bytes(digest[:8], "big", signed=True)
            with self._db.engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    connection.commit()
