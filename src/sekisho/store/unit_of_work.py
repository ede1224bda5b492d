"""Units of work: one transaction, and the domain events an operation recorded in it.

`Store.write()` opens a transaction and yields a `UnitOfWork`. The operation changes rows
through `uow.session` and records what it did with `uow.record(event)`; the effect handlers
write that event's timeline, audit and outbox rows into the same transaction at once. After
the commit, and only then, the bus hears of it. A unit of work that raises rolls back with
everything its events wrote, and publishes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from sekisho.domain.events import DomainEvent
from sekisho.services.events import Event, EventBus
from sekisho.store.db import Database

if TYPE_CHECKING:
    from sekisho.effects import Effects


class UnitOfWork:
    def __init__(self, session: Session, effects: Effects) -> None:
        self.session = session
        self._effects = effects
        self._fx = effects.context(session)
        self._published: list[Event] = []

    def record(self, *events: DomainEvent) -> None:
        for event in events:
            self._published.extend(self._effects.apply(self._fx, event))

    @property
    def published(self) -> tuple[Event, ...]:
        """What the bus will hear once this unit of work has committed."""
        return tuple(self._published)


class Store:
    """The unit-of-work factory: every change goes through `write()`."""

    def __init__(self, db: Database, effects: Effects, bus: EventBus) -> None:
        self.db, self._effects, self._bus = db, effects, bus

    @contextmanager
    def write(self) -> Iterator[UnitOfWork]:
        with self.db.write() as session:
            uow = UnitOfWork(session, self._effects)
            yield uow
        for event in uow.published:
            self._bus.publish(event)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.db.read() as session:
            yield session
