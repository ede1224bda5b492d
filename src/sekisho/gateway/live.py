"""Live sessions inside the gateway: their connections, their counters, and how they end."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from sekisho.domain.sessions import Carried, Counters
from sekisho.gateway.relay import Cut, Meter


@dataclass
class LiveSession:
    id: int
    user: str
    target: str
    token_id: str
    grant_id: int | None
    expires_at: datetime
    expiry_reason: str  # what `expires_at` is: the grant's end, the login's, the length cap
    idle_timeout: float  # seconds
    wake: socket.socket  # written to when the session ends, to wake its control thread
    limits: list[tuple[datetime, str]]  # the login's end, the length cap: whatever carries it
    target_addr: tuple[str, int]  # from the model; refreshed whenever the session is re-decided
    opened: float = field(default_factory=time.monotonic)
    ended: str | None = None  # the reason, once it ended
    retry: bool = False  # ended by the gateway stopping, not by access: forwarders come back
    connections: int = 0
    _closed_up: int = 0
    _closed_down: int = 0
    _relays: dict[int, tuple[Cut, Meter]] = field(default_factory=dict)
    _standby: dict[int, Cut] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Held while the session is re-decided from the store (read, then re-bind or end), so
    # re-checks of one session never interleave: the later read always applies last.
    checking: threading.Lock = field(default_factory=threading.Lock)

    def carried(self) -> Carried:
        """What the store is asked about this session."""
        return Carried(self.id, self.user, self.target, self.grant_id)

    def add(self, cut: Cut, meter: Meter) -> bool:
        """Carry one more connection; False (and cut at once) if the session has ended."""
        with self._lock:
            if self.ended is None:
                self._relays[id(cut)] = (cut, meter)
                self.connections += 1
                return True
            reason = self.ended
        cut(reason)
        return False

    def add_standby(self, cut: Cut) -> bool:
        with self._lock:
            if self.ended is None:
                self._standby[id(cut)] = cut
                return True
        return False

    def remove_standby(self, cut: Cut) -> None:
        with self._lock:
            self._standby.pop(id(cut), None)

    def remove(self, cut: Cut) -> None:
        with self._lock:
            found = self._relays.pop(id(cut), None)
            if found is not None:
                self._closed_up += found[1].up
                self._closed_down += found[1].down

    def end(self, reason: str, *, retry: bool = False) -> bool:
        """Cut every connection now and wake the control thread. False if already ended."""
        with self._lock:
            if self.ended is not None:
                return False
            self.ended, self.retry = reason, retry
            cuts = [cut for cut, _ in self._relays.values()] + list(self._standby.values())
        for cut in cuts:
            cut(reason)
        with contextlib.suppress(OSError):
            self.wake.send(b"x")
        return True

    def counters(self) -> Counters:
        with self._lock:
            meters = [meter for _, meter in self._relays.values()]
            up = self._closed_up + sum(m.up for m in meters)
            down = self._closed_down + sum(m.down for m in meters)
            return Counters(self.id, up, down, self.connections)

    def idle_for(self, now: float) -> float:
        """Seconds since anything moved in any of its connections (or since it opened)."""
        with self._lock:
            last = max([m.last_activity for _, m in self._relays.values()] + [self.opened])
        return now - last


class Registry:
    """The gateway's live sessions, findable by id, grant and user."""

    def __init__(self) -> None:
        self._sessions: dict[int, LiveSession] = {}
        self._lock = threading.Lock()

    def add(self, live: LiveSession) -> None:
        with self._lock:
            self._sessions[live.id] = live

    def discard(self, live: LiveSession) -> None:
        with self._lock:
            self._sessions.pop(live.id, None)

    def get(self, session_id: int) -> LiveSession | None:
        with self._lock:
            return self._sessions.get(session_id)

    def all(self) -> list[LiveSession]:
        with self._lock:
            return list(self._sessions.values())

    def carried_by(self, grant_id: int) -> list[LiveSession]:
        return [s for s in self.all() if s.grant_id == grant_id]

    def of_user(self, user: str) -> list[LiveSession]:
        return [s for s in self.all() if s.user == user]
