"""Loading a version of the access model: LoadModel."""

from __future__ import annotations

from dataclasses import dataclass

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.domain.events import ModelLoaded
from sekisho.model import load_text
from sekisho.store.models import StoredModels, digest
from sekisho.store.unit_of_work import Store


@dataclass(frozen=True)
class LoadedModel:
    id: int
    sha256: str
    changed: bool  # False: the same text was in force already


class LoadModel:
    """Validate and store a model version; every node decides under it from the commit on.
    An invalid model raises and changes nothing; the text in force already is no new version."""

    def __init__(self, store: Store, clock: Clock, models: StoredModels) -> None:
        self._store, self._clock, self._models = store, clock, models

    def execute(self, text: str, source_name: str, actor: Actor) -> LoadedModel:
        model = load_text(text, source_name)
        sha256 = digest(text)
        now = self._clock.now()
        with self._store.write() as uow:
            latest = self._models.latest(uow.session)
            if latest is not None and latest.sha256 == sha256:
                return LoadedModel(latest.id, sha256, changed=False)
            version = self._models.add(
                uow.session, model, text, source_name=source_name, loaded_by=actor.name, at=now
            )
            uow.record(ModelLoaded(now, version.id, sha256, source_name, actor))
        return LoadedModel(version.id, sha256, changed=True)
