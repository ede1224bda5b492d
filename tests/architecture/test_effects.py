"""Every domain event an operation can record has exactly one effect handler.

A recorded event without a handler would fail the operation's transaction at run time; this
finds it before any operation runs.
"""

from __future__ import annotations

from sekisho.domain import events
from sekisho.domain.events import DomainEvent
from sekisho.effects import handlers


def _event_types() -> set[type]:
    found: set[type] = set()
    waiting = [DomainEvent]
    while waiting:
        for sub in waiting.pop().__subclasses__():
            if sub.__module__ == events.__name__:
                found.add(sub)
            waiting.append(sub)
    return found


def _recordable() -> set[type]:
    """The events an operation records: a kind with kinds of its own (`SignInRefused`,
    whose kinds say why) is only their common shape."""
    kinds = _event_types()
    return {t for t in kinds if not any(issubclass(o, t) and o is not t for o in kinds)}


def test_every_domain_event_has_an_effect_handler() -> None:
    missing = sorted(t.__name__ for t in _recordable() - set(handlers()))
    assert not missing, f"domain events no effect handler turns into records: {missing}"


def test_handlers_are_only_for_domain_events() -> None:
    strays = sorted(t.__name__ for t in set(handlers()) - _event_types())
    assert not strays, f"handlers for types that are not domain events: {strays}"
