"""Build the core from settings: the one place that chooses the database, provider and keys."""

from __future__ import annotations

from sekisho.clock import Clock, SystemClock
from sekisho.config import Settings
from sekisho.providers.local import LocalProvider
from sekisho.services.core import Core
from sekisho.services.secretbox import SecretBox
from sekisho.store import migrate
from sekisho.store.db import Database


def build_core(settings: Settings, clock: Clock | None = None) -> Core:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.resolved_database_url)
    clock = clock or SystemClock()
    return Core(
        db=db,
        settings=settings,
        provider=LocalProvider(db, clock),
        secrets=SecretBox.from_environment(settings.secret_key_file),
        clock=clock,
    )


def ensure_schema(core: Core) -> None:
    """Create or upgrade the schema to this version of sekisho."""
    migrate.upgrade(core.db)
