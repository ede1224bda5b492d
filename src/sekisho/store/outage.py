"""When the database does not answer: what that looks like, and saying so once.

An outage is a fact about the database, not about one call, so it is logged once when it
starts (the first call that finds the database unreachable) and once when it ends (the
first connection handed out again), never with a traceback per call.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import structlog
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from sekisho.store.db import Database

RETRY_AFTER_SECONDS = 5


def unavailable(error: BaseException) -> bool:
    """True if `error` says the database cannot be reached (or cannot serve us now).

    A deadlock or a serialization failure (SQLSTATE class 40) is an OperationalError too, but
    the database is up: that is not an outage."""
    if isinstance(error, PoolTimeout | DisconnectionError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, OperationalError | InterfaceError):
        sqlstate = getattr(error.orig, "sqlstate", None)
        return not (isinstance(sqlstate, str) and sqlstate.startswith("40"))
    return False


def _log() -> Any:
    # Looked up each time: an outage is rare, and a fresh logger follows the current
    # logging set-up even when loggers are cached on first use.
    return structlog.get_logger(__name__)


class OutageWatch:
    """Tracks one database's outages and logs their start and end."""

    def __init__(self, db: Database) -> None:
        self._lock = threading.Lock()
        self._down_since: float | None = None  # monotonic
        for engine in db.engines:  # (no reference to db: it may go while its watch is kept)
            event.listen(engine, "checkout", self._on_checkout)

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, error: BaseException) -> None:
        """A call found the database unreachable: the first one of an outage says so."""
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        _log().error(
            "the database is unavailable; calls answer 503 until it is back",
            error=type(error).__name__,
            reason=reason[0][:300] if reason else "",
        )

    def answered(self) -> None:
        """The database handed out a connection: if it was down, it is back."""
        if not self.down:  # the common case, without the lock
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:  # (another thread may have said it first)
            seconds = round(time.monotonic() - since, 1)
            _log().info("the database is back", unavailable_for_seconds=seconds)

    def probe(self, db: Database) -> bool:
        """Ask the database a trivial question; False (and an outage noted) if it cannot."""
        try:
            with db.read() as s:
                s.execute(text("SELECT 1"))
        except Exception as error:
            if not unavailable(error):
                raise
            self.failed(error)
            return False
        return True

    def _on_checkout(self, *_args: Any) -> None:
        self.answered()


_watches: weakref.WeakKeyDictionary[Database, OutageWatch] = weakref.WeakKeyDictionary()
_watches_lock = threading.Lock()


def watch(db: Database) -> OutageWatch:
    """The one watch of this database (made on first use)."""
    with _watches_lock:
        found = _watches.get(db)
        if found is None:
            found = _watches[db] = OutageWatch(db)
        return found


def loop_failed(db: Database, error: BaseException, logger: Any, what: str) -> None:
    """A background loop's turn failed: an outage is said once (with the API's and the
    gateway's), anything else with its traceback, as `what`."""
    if unavailable(error):
        watch(db).failed(error)
    else:
        logger.exception(what)
