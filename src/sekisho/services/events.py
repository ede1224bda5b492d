"""The in-process event bus. Services publish after their transaction commits."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Event:
    name: str  # grant.activated, grant.ended, request.filed, request.decided, ...
    at: datetime
    request_id: int | None = None
    grant_id: int | None = None
    user: str | None = None
    group: str | None = None
    data: dict[str, str] = field(default_factory=dict)


Subscriber = Callable[[Event], None]

# Published locally by whatever carries events between processes when some may have been lost
# (PostgreSQL's listener reconnected): subscribers that act on access re-read the store.
EVENTS_MISSED = "events.missed"
# A lock went in force: gateways re-check the sessions it may cover (the user's, or all).
LOCK_PLACED = "lock.placed"


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:  # one broken subscriber must not stop the others
                # Not `event=`: structlog's message parameter has that name, and the clash
                # would raise from here, breaking the publisher after all.
                log.exception("event subscriber failed", event_name=event.name)


class Wakeup:
    """Wakes a loop's sleeper from any thread: subscribed to the bus, whose publishers call
    from their own threads, and called by `stop()` from wherever a shutdown starts."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        """Call from inside the running loop whose sleeper this wakes."""
        self._loop = asyncio.get_running_loop()

    def __call__(self, _event: Event | None = None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.event.set)
