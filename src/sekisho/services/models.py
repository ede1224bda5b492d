"""The access model as interfaces call it: read the one in force, or load a new version.

Reading is the model source (`sekisho.store.models.StoredModels`, the `ModelSource` port);
loading is the `LoadModel` operation. This facade keeps the one name (`core.models`) the
API, the CLI, the web and the tests call.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel
from sekisho.domain.actor import Actor
from sekisho.operations.models import LoadedModel, LoadModel
from sekisho.store.models import StoredModels

__all__ = ["LoadedModel", "ModelService"]


class ModelService:
    def __init__(self, source: StoredModels, load: LoadModel) -> None:
        self._source, self._load = source, load

    def load(self, text: str, source_name: str, actor: Actor) -> LoadedModel:
        """Validate and store a model version. Invalid models raise and change nothing."""
        return self._load.execute(text, source_name, actor)

    def current(self, session: Session | Connection | None = None) -> tuple[int, AccessModel]:
        return self._source.current(session)

    def model(self, session: Session | Connection | None = None) -> AccessModel:
        return self._source.model(session)

    def one_version(self) -> AbstractContextManager[None]:
        return self._source.one_version()
