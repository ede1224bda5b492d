"""Ports: the small record of what the outside world is, handed to every operation.

Each port is a small interface with a twin for tests: the store (units of work over SQLite or
PostgreSQL), the clock (`ManualClock`), the bus, the provider (`MemoryProvider`), and the
model source. Operations take the ports they use and nothing else; `bootstrap` builds them.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel


class ModelSource(Protocol):
    """The access model in force, read in the caller's transaction (cached by version)."""

    def current(self, session: Session | Connection | None = None) -> tuple[int, AccessModel]:
        """The version's id and the model."""
        ...

    def model(self, session: Session | Connection | None = None) -> AccessModel: ...
