"""Locks: the kill switch. While a lock is in force, what it covers is denied, with its reason.

A lock names one subject: a user (every path they have: logins, requests, approvals, grants,
sessions, role credentials), a target or a role (nobody may reach it, and every grant of a
group that reaches it ends), or a group (nobody may use or request it). Placing one ends what
it covers at once; its expiry or removal restores nothing: access comes back only by asking
again. Pure rules, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sekisho.domain.access import AccessModel, Group, Verb
from sekisho.domain.errors import InvalidInput
from sekisho.domain.timespec import parse_duration, parse_instant


class LockKind(StrEnum):
    USER = "user"
    TARGET = "target"
    GROUP = "group"
    ROLE = "role"  # ACCOUNT/ROLE


@dataclass(frozen=True)
class Lock:
    id: int
    kind: LockKind
    subject: str
    reason: str
    created_by: str
    created_at: datetime
    until: datetime | None = None  # None: until someone removes it

    @property
    def message(self) -> str:
        """What every refusal it causes says: "locked by admin01: laptop stolen"."""
        return f"locked by {self.created_by}: {self.reason}"

    def in_force(self, at: datetime) -> bool:
        """Placed and not yet run out at `at` (a removed lock is not in force at all)."""
        return self.created_at <= at and (self.until is None or at < self.until)

    def covers_user(self, user: str) -> bool:
        return self.kind is LockKind.USER and self.subject == user

    def covers_object(self, verb: Verb, obj: str) -> bool:
        """Whether it stops everyone reaching `obj` with `verb`."""
        kind = LockKind.ROLE if verb is Verb.ASSUME else LockKind.TARGET
        return self.kind is kind and self.subject == obj

    def covers_group(self, group: Group) -> bool:
        """Whether membership of `group` is locked: the group itself, or something it reaches."""
        if self.kind is LockKind.GROUP:
            return self.subject == group.name
        if self.kind is LockKind.ROLE:
            return self.subject in group.permissions.assume
        if self.kind is LockKind.TARGET:
            return self.subject in group.permissions.connect
        return False

    def covers_membership(self, model: AccessModel, user: str, group_name: str) -> bool:
        """Whether a grant (or a request) of `user` in `group_name` falls under this lock."""
        if self.covers_user(user):
            return True
        group = model.group(group_name)
        return group is not None and self.covers_group(group)


def lock_of_user(locks: Iterable[Lock], user: str) -> Lock | None:
    return next((lock for lock in locks if lock.covers_user(user)), None)


def lock_of_membership(
    locks: Iterable[Lock], model: AccessModel, user: str, group: str
) -> Lock | None:
    return next((lock for lock in locks if lock.covers_membership(model, user, group)), None)


def lock_of_access(locks: Iterable[Lock], user: str, verb: Verb, obj: str) -> Lock | None:
    """The lock that stops `user` reaching `obj` whatever group would allow it, if any."""
    return next(
        (lock for lock in locks if lock.covers_user(user) or lock.covers_object(verb, obj)), None
    )


def check_subject(model: AccessModel, kind: LockKind, subject: str) -> str:
    """The subject, if the model knows it and locking it would cover something."""
    known = {
        LockKind.USER: model.user(subject) is not None,
        LockKind.TARGET: model.target(subject) is not None,
        LockKind.ROLE: model.role(subject) is not None,
        LockKind.GROUP: model.group(subject) is not None,
    }[kind]
    if not known:
        raise InvalidInput.one(
            "subject", f"unknown_{kind.value}", f"the model has no {kind.value} {subject!r}"
        )
    if kind is LockKind.GROUP:
        group = model.group(subject)
        assert group is not None
        perms = group.permissions
        if not (perms.assume or perms.connect):
            raise InvalidInput.one(
                "subject",
                "covers_nothing",
                f"{subject} may neither assume a role nor connect to a target: "
                "a lock on it would cover nothing",
            )
    return subject


def lock_end(
    until: str | None, duration: str | None, now: datetime, tz: ZoneInfo
) -> datetime | None:
    """When a lock runs out: at `until` (ISO 8601; without a zone, in the model's), after
    `duration` (2h, 1d), or never (None: until someone removes it)."""
    if until is not None and duration is not None:
        raise InvalidInput.one("duration", "one_of", "give an end or a duration, not both")
    if duration is not None:
        return now + parse_duration(duration, "duration")
    if until is None:
        return None
    end = parse_instant(until, "until", tz)
    if end <= now:
        raise InvalidInput.one("until", "in_the_past", "a lock must end in the future")
    return end
