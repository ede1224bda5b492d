"""One membership change at a time per (user, group).

Activating one grant while ending an overlapping one must not interleave: the ending side could
remove the membership the activating side just added. Within one process a keyed lock is
enough (SQLite is single-node); on PostgreSQL an advisory lock extends it across nodes.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import text

from sekisho.store.db import Database

Pair = tuple[str, str]  # (user, group)


class ProcessLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Pair, tuple[threading.Lock, int]] = {}

    def hold(self, user: str, group: str) -> AbstractContextManager[None]:
        return self.hold_all([(user, group)])

    @contextmanager
    def hold_all(self, pairs: Iterable[Pair]) -> Iterator[None]:
        """Every pair's lock, taken in one order (sorted) so two holders never deadlock."""
        chosen = sorted(set(pairs))
        locks = self._register(chosen)
        taken = 0
        try:
            for lock in locks:
                lock.acquire()
                taken += 1
            yield
        finally:
            for lock in reversed(locks[:taken]):
                lock.release()
            self._unregister(chosen)

    def _register(self, pairs: list[Pair]) -> list[threading.Lock]:
        """Each pair's lock, counted as wanted by one more holder (created if none is)."""
        with self._guard:
            found = []
            for key in pairs:
                lock, users = self._locks.get(key, (threading.Lock(), 0))
                self._locks[key] = (lock, users + 1)
                found.append(lock)
            return found

    def _unregister(self, pairs: list[Pair]) -> None:
        """One holder fewer for each pair; a lock nobody wants any more is dropped."""
        with self._guard:
            for key in pairs:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class DatabaseLocks(ProcessLocks):
    """The process locks, plus PostgreSQL advisory locks when the database is shared: all of
    a batch's on one connection, in one statement each way."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self._db = db

    @contextmanager
    def hold_all(self, pairs: Iterable[Pair]) -> Iterator[None]:
        chosen = sorted(set(pairs))
        with super().hold_all(chosen):
            if not self._db.is_postgres or not chosen:
                yield
                return
            keys = sorted({advisory_key(user, group) for user, group in chosen})
            with self._db.engine.connect() as connection:
                # Volatile functions run after the sort: the locks are taken in key order.
                connection.execute(_LOCK, {"keys": keys})
                try:
                    yield
                finally:
                    connection.execute(_UNLOCK, {"keys": keys})
                    connection.commit()


_LOCK = text("SELECT pg_advisory_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k")
_UNLOCK = text("SELECT pg_advisory_unlock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


def advisory_key(user: str, group: str) -> int:
    digest = hashlib.sha256(f"{user}\0{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
