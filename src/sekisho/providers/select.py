"""The provider the access model names, rebuilt when a new model changes it."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import ProviderKind, ProviderSettings
from sekisho.providers.base import Provider
from sekisho.store.db import Database
from sekisho.store.models import StoredModels


class ProviderFromModel:
    """A Provider that delegates to the one configured in the model in force."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db, self._clock = db, clock
        # Its own reader of the model in force: the provider is a port the operations are
        # built with, so it cannot wait for them (no two-phase start-up).
        self._models = StoredModels(db)
        self._built: tuple[ProviderSettings, Provider] | None = None
        self._lock = threading.Lock()

    def current(self, session: Session | None = None) -> Provider:
        """The provider of the model in force (in `session`'s transaction, if given)."""
        settings = self._models.model(session).provider
        with self._lock:
            if self._built is None or self._built[0] != settings:
                self._built = (settings, build(settings, self._db, self._clock))
            return self._built[1]

    @property
    def name(self) -> str:
        return self.current().name

    def add_member(self, user: str, group: str) -> str:
        return self.current().add_member(user, group)

    def remove_member(self, user: str, group: str) -> str:
        return self.current().remove_member(user, group)

    def set_tag(self, user: str, key: str, value: str) -> str:
        return self.current().set_tag(user, key, value)

    def delete_tag(self, user: str, key: str) -> str:
        return self.current().delete_tag(user, key)

    def members(self, group: str) -> frozenset[str]:
        return self.current().members(group)

    def tags(self, user: str) -> dict[str, str]:
        return self.current().tags(user)

    def within(self, session: Session) -> Provider | None:
        return self.current(session).within(session)


def build(settings: ProviderSettings, db: Database, clock: Clock) -> Provider:
    if settings.kind is ProviderKind.AWS_IAM:
        from sekisho.providers.aws import AwsClients
        from sekisho.providers.aws_iam import AwsIamProvider

        return AwsIamProvider(AwsClients(settings))
    from sekisho.providers.local import LocalProvider

    return LocalProvider(db, clock)
