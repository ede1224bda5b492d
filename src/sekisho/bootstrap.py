"""Build the core from settings: the one place that chooses the database, provider and keys."""

from __future__ import annotations

from sekisho.clock import Clock, SystemClock
from sekisho.config import Settings
from sekisho.providers.select import ProviderFromModel
from sekisho.services.core import Core
from sekisho.services.secretbox import SecretBox
from sekisho.store import migrate
from sekisho.store.db import Database


def build_core(settings: Settings, clock: Clock | None = None) -> Core:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.resolved_database_url)
    clock = clock or SystemClock()
    provider = ProviderFromModel(db, clock)  # local, or AWS IAM, as the model says
    core = Core(
        db=db,
        settings=settings,
        provider=provider,
        secrets=SecretBox.from_environment(settings.secret_key_file),
        clock=clock,
    )
    provider.bind(core.models.model)
    return core


def ensure_schema(core: Core) -> None:
    """Create or upgrade the schema to this version of sekisho."""
    migrate.upgrade(core.db)
