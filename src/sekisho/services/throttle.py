"""Sign-in throttling: slow a guesser down, never lock the real user out of their own machine.

Failures are counted in the store (every node sees them) by what was typed, never by whether
the name exists, so an unknown name is throttled exactly like a known one and no answer tells
which names are real. Each attempt counts toward three counters:

- this name from this address: paused for `lockout_duration` after `lockout_threshold`
  failures (one guesser, one name);
- this address, whatever the name: paused after `login_source_threshold` failures (one guesser
  trying many names);
- this name, from any address: after `login_user_threshold` failures each further one pauses
  the name, doubling from a second up to `lockout_duration` (many addresses, one name).

An address the name signed in from within `login_trusted_for` (a token on record) is exempt
from the last two, so the user on their own machine still signs in while others guess. An
attempt is charged before its password is checked: guesses sent at once cannot slip past a
threshold, and a paused attempt costs no password hash. A counter forgets once
`lockout_duration` passes without a failure. IPv6 addresses count by their /64, which one
machine usually holds whole.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Executable, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sekisho.config import Settings
from sekisho.store.tables import LoginThrottleRow, TokenRow

PAIR, SOURCE, NAME = "name from this address", "this address", "name"
PRUNE_BATCH = 500
REMEMBERED_PAUSES = 10_000


@dataclass(frozen=True)
class Rule:
    scope: str
    threshold: int
    escalates: bool  # each failure past the threshold doubles the pause
    spares_trusted: bool  # an address the name signed in from recently is exempt


@dataclass(frozen=True)
class Pause:
    until: datetime
    scope: str  # which counter paused the attempt


@dataclass(frozen=True)
class Admission:
    """The throttle's answer to one attempt: go ahead (and it is counted), or wait."""

    keys: dict[str, str]  # scope -> the counter's key
    trusted: bool  # the name signed in from this address recently
    pause: Pause | None = None  # refused: paused until then
    paused: tuple[Pause, ...] = ()  # pauses this attempt's failure would start


@dataclass(frozen=True)
class Limits:
    """The throttle's settings (see the module's docstring)."""

    pair_threshold: int
    source_threshold: int
    name_threshold: int
    window: timedelta  # how long a pause lasts, and a counter remembers
    trusted_for: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.lockout_threshold,
            settings.login_source_threshold,
            settings.login_user_threshold,
            settings.lockout_duration,
            settings.login_trusted_for,
        )


class LoginThrottle:
    def __init__(self, limits: Limits, digest: Callable[[str], str]) -> None:
        """`digest`: a keyed digest (`SecretBox.digest`): counters name no name or address."""
        self._limits, self._digest = limits, digest
        self._rules = (
            Rule(PAIR, limits.pair_threshold, escalates=False, spares_trusted=False),
            Rule(SOURCE, limits.source_threshold, escalates=False, spares_trusted=True),
            Rule(NAME, limits.name_threshold, escalates=True, spares_trusted=True),
        )

    def signed_in_recently(self, s: Session, name: str, source: str, now: datetime) -> bool:
        """A token on record for this name from this address, within `login_trusted_for`."""
        since = now - self._limits.trusted_for
        token = s.scalar(
            select(TokenRow.id)
            .where(TokenRow.user == name, TokenRow.source == source, TokenRow.issued_at >= since)
            .limit(1)
        )
        return token is not None

    def pause_for(
        self, s: Session, name: str, source: str, now: datetime, trusted: bool
    ) -> Pause | None:
        """The pause in force for this attempt, if any: a read, which changes nothing, so a
        paused flood costs no write (`admit` checks again under the counters' locks)."""
        keys = self._keys(name, source)
        found = {
            row.key: row
            for row in s.scalars(
                select(LoginThrottleRow).where(LoginThrottleRow.key.in_(keys.values()))
            )
        }
        return self._pause_in_force({k: found.get(v) for k, v in keys.items()}, trusted, now)

    def admit(self, s: Session, name: str, source: str, now: datetime, trusted: bool) -> Admission:
        """Refuse a paused attempt, else count it as a failure until it succeeds."""
        keys = self._keys(name, source)
        rows = self._lock(s, keys, now)
        pause = self._pause_in_force(dict(rows), trusted, now)
        if pause is not None:
            return Admission(keys, trusted, pause)
        started = []
        for rule in self._rules:
            row = rows[rule.scope]
            if now - row.last_failure_at >= self._limits.window:
                row.failures, row.blocked_until = 0, None  # quiet for a whole window
            row.failures += 1
            row.last_failure_at = now
            if row.failures >= rule.threshold:
                row.blocked_until = now + self._pause(rule, row.failures)
                started.append(Pause(row.blocked_until, rule.scope))
        return Admission(keys, trusted, paused=tuple(started))

    def _pause_in_force(
        self, rows: dict[str, LoginThrottleRow | None], trusted: bool, now: datetime
    ) -> Pause | None:
        window = self._limits.window
        active = [
            Pause(row.blocked_until, rule.scope)
            for rule in self._rules
            if (row := rows[rule.scope]) is not None
            and row.blocked_until is not None
            and row.blocked_until > now
            and now - row.last_failure_at < window  # else forgotten
            and not (trusted and rule.spares_trusted)
        ]
        return max(active, key=lambda p: p.until, default=None)

    def succeeded(self, s: Session, admission: Admission, now: datetime) -> None:
        """A sign-in went through: this name from this address starts over.

        The address's and the name's counts only lose this attempt: the real user signing
        in says nothing about the guesses others make.
        """
        rows = self._refund(s, admission, now)
        rows[PAIR].failures, rows[PAIR].blocked_until = 0, None
        self._prune(s, now)

    def refund(self, s: Session, admission: Admission, now: datetime) -> None:
        """The attempt was not a guess (a right password): take its count back."""
        self._refund(s, admission, now)

    def _refund(
        self, s: Session, admission: Admission, now: datetime
    ) -> dict[str, LoginThrottleRow]:
        rows = self._lock(s, admission.keys, now)
        for rule in self._rules:
            row = rows[rule.scope]
            row.failures = max(0, row.failures - 1)
            if row.failures < rule.threshold:
                row.blocked_until = None
        return rows

    def _pause(self, rule: Rule, failures: int) -> timedelta:
        longest = self._limits.window
        if not rule.escalates:
            return longest
        doublings = min(failures - rule.threshold, 30)
        return min(longest, timedelta(seconds=2**doublings))

    def _keys(self, name: str, source: str) -> dict[str, str]:
        digest = self._digest
        where = address_key(source)
        return {
            PAIR: digest(f"pair\0{name}\0{where}"),
            SOURCE: digest(f"source\0{where}"),
            NAME: digest(f"name\0{name}"),
        }

    def _lock(self, s: Session, keys: dict[str, str], now: datetime) -> dict[str, LoginThrottleRow]:
        """The counters, created if new, locked until commit (in key order: no deadlocks)."""
        ordered = sorted(set(keys.values()))
        for _ in range(3):  # a prune may remove a stale counter between insert and select
            s.execute(_insert_missing(s, ordered, now))
            found = {
                row.key: row
                for row in s.scalars(
                    select(LoginThrottleRow)
                    .where(LoginThrottleRow.key.in_(ordered))
                    .order_by(LoginThrottleRow.key)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            }
            if len(found) == len(ordered):
                return {scope: found[key] for scope, key in keys.items()}
        raise RuntimeError("sign-in counters kept vanishing while being read")

    def _prune(self, s: Session, now: datetime) -> None:
        """Forget counters quiet for a whole window (skipping any another attempt holds)."""
        stale = (
            select(LoginThrottleRow.key)
            .where(LoginThrottleRow.last_failure_at <= now - self._limits.window)
            .limit(PRUNE_BATCH)
            .with_for_update(skip_locked=True)
        )
        s.execute(
            delete(LoginThrottleRow)
            .where(LoginThrottleRow.key.in_(stale.scalar_subquery()))
            .execution_options(synchronize_session=False)
        )


class RecentPauses:
    """Pauses this process saw in force, by (name, address): a flood of attempts that are
    paused anyway is refused without a query each.

    The store stays the truth: a remembered pause ends when the store said it would, and a
    sign-in that succeeds here forgets its pair. (One lifted early elsewhere, by a refund of
    a concurrent success, may still hold here until its end.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pauses: OrderedDict[tuple[str, str], tuple[Pause, bool]] = OrderedDict()

    def get(self, name: str, source: str, now: datetime) -> tuple[Pause, bool] | None:
        """The pause and whether the name was known, if one is in force."""
        with self._lock:
            found = self._pauses.get((name, source))
            if found is not None and found[0].until <= now:
                del self._pauses[(name, source)]
                return None
            return found

    def put(self, name: str, source: str, pause: Pause, known: bool) -> None:
        with self._lock:
            self._pauses[(name, source)] = (pause, known)
            self._pauses.move_to_end((name, source))
            while len(self._pauses) > REMEMBERED_PAUSES:
                self._pauses.popitem(last=False)

    def forget(self, name: str, source: str) -> None:
        with self._lock:
            self._pauses.pop((name, source), None)


def _insert_missing(s: Session, keys: list[str], now: datetime) -> Executable:
    fresh = [{"key": k, "failures": 0, "last_failure_at": now} for k in keys]
    if s.get_bind().dialect.name == "postgresql":
        return postgresql.insert(LoginThrottleRow).values(fresh).on_conflict_do_nothing()
    return sqlite.insert(LoginThrottleRow).values(fresh).on_conflict_do_nothing()


def address_key(source: str) -> str:
    """What one machine holds: an IPv4 address, or an IPv6 address's /64."""
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return source
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)
