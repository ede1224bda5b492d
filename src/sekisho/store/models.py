"""The access model's versions in the store: the model source every use case reads.

The database keeps every version loaded, so all nodes agree on the model and an auditor can
see which model was in force when a request was filed. `StoredModels` is the `ModelSource`
port over it: the newest version is in force, parsed once per version per process.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, SessionTransaction

from sekisho.domain.access import AccessModel
from sekisho.domain.errors import Conflict
from sekisho.model import load_text
from sekisho.store import directory
from sekisho.store.db import Database
from sekisho.store.tables import AccessModelRow

# Where a session remembers the version in force for its transaction (`Session.info`).
_IN_FORCE = "sekisho.model_in_force"


class _OneVersion:
    """The version an operation (an API request, a sweep pass) decides under, once known."""

    def __init__(self) -> None:
        self.open = True
        self.found: tuple[int, AccessModel] | None = None


# The operation in progress in this context: threads start without one, and an asyncio task
# started by a request keeps a reference that goes dead (`open` false) when the request ends.
_OPERATION: ContextVar[_OneVersion | None] = ContextVar("sekisho_one_version", default=None)
NO_MODEL = "no access model is loaded: run `sekisho init --model FILE` first"


@dataclass(frozen=True)
class Version:
    id: int
    sha256: str
    directory: int = 0  # what the IdPs say of groups, as of (`store.directory.version`)


@dataclass(frozen=True)
class _Remembered:
    transaction: SessionTransaction | None
    model_id: int
    model: AccessModel


class StoredModels:
    """The access model in force, as the store says, read once per transaction.

    Another process or node may load a new version at any moment, so every transaction asks
    the store which version is in force, but only once: the answer is remembered in the ORM
    session's `info` for that transaction, so the operation's further reads and its effect
    handlers' cost no statement, and all of them decide under the same model. A version's
    text is parsed once per process (keyed by id and digest: SQLite may hand a rolled-back
    version's id to the next one). A plain connection (the gateway's hot re-check) is asked
    every call: its `info` belongs to the pooled connection and outlives the transaction.

    Inside `one_version()` (an API request, a sweep pass, a gateway admission) the store is
    asked once for the whole operation, however many transactions it takes.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._parsed: dict[Version, AccessModel] = {}  # by id and digest: the text, parsed
        self._overlaid: dict[Version, tuple[int, AccessModel]] = {}  # the latest with members
        self._lock = threading.Lock()

    @contextmanager
    def one_version(self) -> Iterator[None]:
        """Everything inside decides under one version: the first transaction that asks reads
        the version in force, the others (each of the operation's transactions and reads)
        reuse it without a statement. A version loaded inside is asked for afresh. Nested
        calls join the outer one."""
        if (outer := _OPERATION.get()) is not None and outer.open:
            yield
            return
        scope = _OneVersion()
        token = _OPERATION.set(scope)
        try:
            yield
        finally:
            scope.open = False
            _OPERATION.reset(token)

    def current(self, session: Session | Connection | None = None) -> tuple[int, AccessModel]:
        """The version's id and the model in force, in the caller's transaction."""
        scope = _OPERATION.get()
        known = scope.found if scope is not None and scope.open else None
        if session is None:
            if known is not None:
                return known
            with self._db.read() as s:
                return self.current(s)
        if isinstance(session, Session):
            remembered = session.info.get(_IN_FORCE)
            if isinstance(remembered, _Remembered) and remembered.transaction is (
                session.get_transaction()
            ):
                return remembered.model_id, remembered.model
        if known is None:
            known = self._read(session)
            if scope is not None and scope.open:
                scope.found = known
        if isinstance(session, Session):
            self._remember(session, *known)
        return known

    def _read(self, session: Session | Connection) -> tuple[int, AccessModel]:
        version = self.latest(session)
        if version is None:
            raise Conflict(NO_MODEL)
        return version.id, self._parsed_version(session, version)

    def model(self, session: Session | Connection | None = None) -> AccessModel:
        return self.current(session)[1]

    @staticmethod
    def latest(session: Session | Connection) -> Version | None:
        """The newest version stored: one indexed row."""
        found = session.execute(
            select(AccessModelRow.id, AccessModelRow.sha256, directory.version())
            .order_by(AccessModelRow.id.desc())
            .limit(1)
        ).first()
        return Version(*found) if found is not None else None

    def add(
        self,
        session: Session,
        model: AccessModel,
        text: str,
        *,
        source_name: str,
        loaded_by: str,
        at: datetime,
    ) -> Version:
        """Store `text` (parsed: `model`) as a new version: in force from here on in this
        transaction, and for everyone once it commits."""
        row = AccessModelRow(
            sha256=digest(text),
            source_name=source_name[:512],
            source_text=text,
            loaded_at=at,
            loaded_by=loaded_by,
        )
        session.add(row)
        session.flush()
        # Remembered for this transaction only: the process cache waits for a committed read,
        # and an operation's later transactions ask the store again.
        self._remember(session, row.id, model)
        if (scope := _OPERATION.get()) is not None:
            scope.found = None
        return Version(row.id, row.sha256)

    def _parsed_version(self, session: Session | Connection, version: Version) -> AccessModel:
        """The version's model as the IdPs complete it (`store.directory.overlay`): the text
        is parsed once, the IdPs read again only when the directory moved (the latest kept)."""
        text_of = Version(version.id, version.sha256)
        with self._lock:
            base = self._parsed.get(text_of)
            overlaid = self._overlaid.get(text_of)
        if overlaid is not None and overlaid[0] == version.directory:
            return overlaid[1]
        if base is None:
            row = session.execute(
                select(AccessModelRow.source_text, AccessModelRow.source_name).where(
                    AccessModelRow.id == version.id
                )
            ).one()
            base = load_text(row.source_text, row.source_name)
        model = directory.overlay(session, base)
        with self._lock:
            self._parsed[text_of] = base
            self._overlaid[text_of] = (version.directory, model)
        return model

    @staticmethod
    def _remember(session: Session, model_id: int, model: AccessModel) -> None:
        session.info[_IN_FORCE] = _Remembered(session.get_transaction(), model_id, model)


def digest(text: str) -> str:
    """A version's identity: two loads of the same text are one version."""
    return hashlib.sha256(text.encode()).hexdigest()
