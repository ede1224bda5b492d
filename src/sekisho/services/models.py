"""The access model in force: loaded from YAML into the database, read by every use case.

The database keeps every version loaded, so all nodes agree on the model and an auditor can see
which model was in force when a request was filed.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Conflict
from sekisho.model import load_text
from sekisho.services.audit import AuditEvent
from sekisho.store.tables import AccessModelRow

if TYPE_CHECKING:
    from sekisho.services.core import Core


@dataclass(frozen=True)
class LoadedModel:
    id: int
    sha256: str
    changed: bool


class ModelService:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._parsed: dict[int, AccessModel] = {}
        self._lock = threading.Lock()

    def load(self, text: str, source_name: str, actor: Actor) -> LoadedModel:
        """Validate and store a model version. Invalid models raise and change nothing."""
        load_text(text, source_name)
        digest = hashlib.sha256(text.encode()).hexdigest()
        with self._core.db.write() as s:
            latest = self._latest(s)
            if latest is not None and latest.sha256 == digest:
                return LoadedModel(latest.id, digest, changed=False)
            row = AccessModelRow(
                sha256=digest,
                source_name=source_name[:512],
                source_text=text,
                loaded_at=self._core.now(),
                loaded_by=actor.name,
            )
            s.add(row)
            s.flush()
            self._core.audit(
                s,
                AuditEvent(
                    "model.loaded",
                    actor.name,
                    actor.source,
                    detail={"sha256": digest, "source_name": source_name[:200]},
                ),
            )
            loaded = LoadedModel(row.id, digest, changed=True)
        self._core.publish("model.loaded", data={"sha256": digest})  # decisions may change
        return loaded

    def current(self, session: Session | Connection | None = None) -> tuple[int, AccessModel]:
        if session is None:
            with self._core.db.read() as s:
                return self.current(s)
        row_id = session.scalar(select(AccessModelRow.id).order_by(AccessModelRow.id.desc()))
        if row_id is None:
            raise Conflict("no access model is loaded: run `sekisho init --model FILE` first")
        with self._lock:
            cached = self._parsed.get(row_id)
        if cached is not None:
            return row_id, cached
        row = session.execute(
            select(AccessModelRow.source_text, AccessModelRow.source_name).where(
                AccessModelRow.id == row_id
            )
        ).one()
        model = load_text(row.source_text, row.source_name)
        with self._lock:
            self._parsed[row_id] = model
        return row_id, model

    def model(self, session: Session | Connection | None = None) -> AccessModel:
        return self.current(session)[1]

    @staticmethod
    def _latest(session: Session) -> AccessModelRow | None:
        return session.scalars(
            select(AccessModelRow).order_by(AccessModelRow.id.desc()).limit(1)
        ).first()
