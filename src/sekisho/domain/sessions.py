"""Forwarding sessions: what the gateway knows when one opens, carries, and reports of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sekisho.domain.access_decisions import AccessDecision

ACTIVE, ENDED, FAILED = "active", "ended", "failed"
STALE_AFTER = timedelta(seconds=30)  # no heartbeat for this long: its gateway stopped
KILL_REASON_MAX = 200


@dataclass(frozen=True)
class Opening:
    """What the gateway knows when a session opens."""

    user: str
    target: str
    token_id: str
    client_addr: str
    local_addr: str
    target_addr: str
    node: str
    expires_at: datetime


@dataclass(frozen=True)
class Carried:
    """A live session as a gateway carries it: what the store is asked about."""

    session_id: int
    user: str
    target: str
    grant_id: int | None  # the grant that carries it now, if any


@dataclass(frozen=True)
class Standing:
    """What the store says of a carried session now: go on under `decision`, or end."""

    session_id: int
    decision: AccessDecision | None  # what allows it now; None: it must end
    ended: str = ""  # why it must end
    withdrawn: bool = False  # it ends because access is denied (not its login, record or a kill)
    target_addr: tuple[str, int] | None = None  # where the model has the target now


@dataclass(frozen=True)
class Counters:
    session_id: int
    bytes_up: int
    bytes_down: int
    connections: int


def killed(by: str | None, reason: str | None) -> str:
    """A killed session's end reason, as the forwarder and the record show it."""
    return f"killed by {by}: {reason}" if reason else f"killed by {by}"
