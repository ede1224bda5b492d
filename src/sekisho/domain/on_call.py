"""Who is on call: what sekisho asks PagerDuty, and what a level that passes on call decides.
Pure: the schedule's entries in, the requester's shift (or none) out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sekisho.domain.access import OnCall
from sekisho.domain.timespec import iso


class OnCallUnavailable(Exception):
    """PagerDuty cannot say now; the message is safe to show and never holds the token."""


@dataclass(frozen=True)
class OnCallEntry:
    """One line of PagerDuty's /oncalls: who holds which escalation level of a schedule."""

    email: str
    escalation_level: int
    start: datetime | None  # None: PagerDuty's "always on call" (no schedule bounds)
    end: datetime | None


@dataclass(frozen=True)
class Shift:
    schedule: str
    escalation_level: int
    start: datetime | None
    end: datetime | None

    def describe(self) -> str:
        span = f"{iso(self.start)} to {iso(self.end)}" if self.start and self.end else "no end"
        return (
            f"on call now in PagerDuty schedule {self.schedule} "
            f"(escalation level {self.escalation_level}, shift {span})"
        )


def shift_of(rule: OnCall, email: str, entries: Iterable[OnCallEntry]) -> Shift | None:
    """The requester's shift that passes the level, if they hold one now."""
    wanted = email.casefold()
    for entry in entries:
        level_ok = not rule.escalation_levels or entry.escalation_level in rule.escalation_levels
        if entry.email.casefold() == wanted and level_ok:
            return Shift(rule.schedule, entry.escalation_level, entry.start, entry.end)
    return None
