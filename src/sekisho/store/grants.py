"""Grants in the store: the one place that says in SQL which grants are active, which hold a
membership, and which are due to end.

`domain.grants` says the same in Python (`is_active`, `holds_membership`); the clauses here are
its SQL twins, so a query narrows the rows and the domain decides for each instant with the
same rule. Nothing else writes `status = 'active'` as a filter: callers compose these clauses
(`select(GrantRow).where(active_at(now))`) or call the queries below, which hand back domain
values (`GrantWindow`, ids, instants), not rows to change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, select, update
from sqlalchemy.orm import Session

from sekisho.domain.grants import (
    EndingGrant,
    EndReason,
    GrantStatus,
    GrantWindow,
    check_transition,
    ended_status,
    ending_from,
)
from sekisho.store.tables import GrantRow

# The grants the provider keeps a membership for (`domain.grants.holds_membership`).
LIVE = (GrantStatus.ACTIVE, GrantStatus.ACTIVATING)
# The grants an ending may take: usable ones, and endings the provider has not confirmed.
ENDABLE = (GrantStatus.ACTIVE, GrantStatus.ENDING)

AnyRow = Row[*tuple[Any, ...]]  # a row of any columns
# `at` is an instant, or a bound parameter standing for one in a prepared statement.
Instant = datetime | ColumnElement[Any]


# -- the rules, as SQL ------------------------------------------------------------------------


def active_at(at: Instant) -> ColumnElement[bool]:
    """`domain.grants.is_active` in SQL: activated, not ended, and `at` inside [start, end)."""
    return and_(
        GrantRow.status == GrantStatus.ACTIVE, GrantRow.start_at <= at, GrantRow.end_at > at
    )


def holding_membership(at: Instant) -> ColumnElement[bool]:
    """`domain.grants.holds_membership` in SQL: active or activating, and not past its end."""
    return and_(GrantRow.status.in_(LIVE), GrantRow.end_at > at)


# Every status a membership is not held in (the complement of LIVE, over a closed set).
_NOT_LIVE = tuple(status for status in GrantStatus if status not in LIVE)


def _holding_by_person(at: Instant) -> ColumnElement[bool]:
    """`holding_membership`, for a query that names its people: said as NOT IN, which no
    index serves, so the database reads by person (a few rows each) instead of walking every
    live grant by status for each chunk of people (what SQLite chooses otherwise)."""
    return and_(GrantRow.status.not_in(_NOT_LIVE), GrantRow.end_at > at)


def expiring_by(at: Instant) -> ColumnElement[bool]:
    """Due to expire: still active, and its end has come."""
    return and_(GrantRow.status == GrantStatus.ACTIVE, GrantRow.end_at <= at)


def retry_due_by(at: Instant) -> ColumnElement[bool]:
    """An ending the provider has not confirmed, whose next attempt has come."""
    return and_(GrantRow.status == GrantStatus.ENDING, GrantRow.retry_at <= at)


# -- queries ----------------------------------------------------------------------------------


# What a window is made of: selected as plain columns where many are read at once
# (`window` takes such a row as it takes a GrantRow).
WINDOW = (
    GrantRow.id,
    GrantRow.user,
    GrantRow.group_name,
    GrantRow.status,
    GrantRow.start_at,
    GrantRow.end_at,
)


def window(row: GrantRow | AnyRow) -> GrantWindow:
    if isinstance(row, GrantRow):
        return _window(row.id, row.user, row.group_name, row.status, row.start_at, row.end_at)
    return _window(*row)  # WINDOW's columns, in order (unpacked: a Row's names cost more)


def _window(
    id_: int, user: str, group: str, status: str, start_at: datetime, end_at: datetime
) -> GrantWindow:
    return GrantWindow(id_, user, group, _STATUSES[status], start_at, end_at)


# A stored status or reason as its enum, by a dict lookup (a sweep reads 50,000 of them).
_STATUSES = {status.value: status for status in GrantStatus}
_REASONS = {reason.value: reason for reason in EndReason}


def active_windows(session: Session, user: str, at: datetime) -> list[GrantWindow]:
    """The user's grants active at `at` (what an access decision weighs)."""
    rows = session.scalars(select(GrantRow).where(GrantRow.user == user, active_at(at)))
    return [window(r) for r in rows]


def held_grant(session: Session, user: str, group: str, at: datetime) -> int | None:
    """One grant of `user` in `group` active at `at`, if there is one."""
    found: int | None = session.scalar(
        select(GrantRow.id)
        .where(GrantRow.user == user, GrantRow.group_name == group, active_at(at))
        .limit(1)
    )
    return found


def membership_windows_of(
    session: Session, pairs: Sequence[tuple[str, str]], at: datetime
) -> dict[tuple[str, str], list[GrantWindow]]:
    """The grants that hold each pair's membership at `at` (user, group): a statement per 500
    users, not one per pair (a due batch ends hundreds at once)."""
    wanted = set(pairs)
    users = sorted({user for user, _group in wanted})
    found: dict[tuple[str, str], list[GrantWindow]] = {pair: [] for pair in wanted}
    for start in range(0, len(users), 500):
        rows = session.execute(
            select(*WINDOW).where(
                GrantRow.user.in_(users[start : start + 500]), _holding_by_person(at)
            )
        )
        for values in rows:
            pair = (values[1], values[2])  # WINDOW: id, user, group_name, ...
            if pair in wanted:
                found[pair].append(_window(*values))
    return found


def membership_holders(session: Session, at: datetime) -> list[GrantWindow]:
    """Every grant that holds a membership at `at`, for every user and group."""
    return [window(r) for r in session.execute(select(*WINDOW).where(holding_membership(at)))]


def endable_ids(session: Session, user: str, group: str) -> list[int]:
    """The grants of `user` in `group` an ending may take (a remove request ends them all)."""
    return list(
        session.scalars(
            select(GrantRow.id).where(
                GrantRow.user == user,
                GrantRow.group_name == group,
                GrantRow.status.in_(ENDABLE),
            )
        )
    )


@dataclass(frozen=True)
class Due:
    expiring: list[int]  # active grants whose end has come, earliest end first
    retries: list[int]  # unconfirmed endings whose retry has come, earliest first


def due(session: Session, at: datetime, limit: int) -> Due:
    """What an expiry pass at `at` must end: at most `limit` of each kind."""
    expiring = session.scalars(
        select(GrantRow.id).where(expiring_by(at)).order_by(GrantRow.end_at).limit(limit)
    )
    retries = session.scalars(
        select(GrantRow.id).where(retry_due_by(at)).order_by(GrantRow.retry_at).limit(limit)
    )
    return Due(list(expiring), list(retries))


# When grants next fall due, as columns a caller selects beside its own (one statement for
# a loop's every deadline): the earliest end of an active grant, and the earliest retry of an
# unconfirmed ending. Either may already have passed: it is due now.
NEXT_END = (
    select(func.min(GrantRow.end_at)).where(GrantRow.status == GrantStatus.ACTIVE)
).scalar_subquery()
NEXT_RETRY = (
    select(func.min(GrantRow.retry_at)).where(GrantRow.status == GrantStatus.ENDING)
).scalar_subquery()


def next_due(session: Session) -> list[datetime]:
    """When grants next fall due (`NEXT_END`, `NEXT_RETRY`), those that are set."""
    found = session.execute(select(NEXT_END, NEXT_RETRY)).one()
    return [f for f in found if f is not None]


def lock_active_of(
    session: Session, *, user: str | None = None, groups: Sequence[str] = ()
) -> list[int]:
    """The active grants of `user` (or, without one, in `groups`), locked, in id order."""
    where = GrantRow.user == user if user is not None else GrantRow.group_name.in_(groups)
    return list(
        session.scalars(
            select(GrantRow.id)
            .where(where, GrantRow.status == GrantStatus.ACTIVE)
            .order_by(GrantRow.id)
            .with_for_update()
        )
    )


def lock(session: Session, grant_id: int) -> GrantRow | None:
    """One grant, locked for this transaction (a second decision on it waits, then sees it)."""
    return session.scalars(
        select(GrantRow).where(GrantRow.id == grant_id).with_for_update()
    ).one_or_none()


def of_request(session: Session, request_id: int) -> GrantRow | None:
    """The grant a request's run made (a request has at most one)."""
    return session.scalars(select(GrantRow).where(GrantRow.request_id == request_id)).one_or_none()


# -- changing a grant -------------------------------------------------------------------------


def add(
    session: Session,
    request_id: int,
    user: str,
    group: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> GrantRow:
    """A new grant for a request: born `activating`, usable once its run confirms it."""
    row = GrantRow(
        request_id=request_id,
        user=user,
        group_name=group,
        start_at=start,
        end_at=end,
        status=GrantStatus.ACTIVATING,
        created_at=now,
        end_attempts=0,
    )
    session.add(row)
    session.flush()
    return row


def move(row: GrantRow, new: GrantStatus) -> None:
    """The one way a stored grant changes status: Conflict if the state machine forbids it."""
    check_transition(GrantStatus(row.status), new)
    row.status = new


def activate(row: GrantRow, now: datetime) -> None:
    """Usable from now: its run confirmed the membership (or it was imported as it stood)."""
    move(row, GrantStatus.ACTIVE)
    row.activated_at = now


# -- ending many grants at once ----------------------------------------------------------------
# An ending changes every grant of a batch the same way, so each step is one UPDATE per chunk
# of ids that hands back what the events need (RETURNING): no grant is loaded as an object.
# Rows are locked in id order first, as everywhere, so two enders never deadlock (PostgreSQL).

_FACTS = (
    GrantRow.id,
    GrantRow.request_id,
    GrantRow.user,
    GrantRow.group_name,
    GrantRow.end_at,
    GrantRow.end_reason,
    GrantRow.end_note,
    GrantRow.status,
    GrantRow.end_attempts,
    GrantRow.last_error,
)
_CHUNK = 1_000  # ids per statement: far below SQLite's and PostgreSQL's limits


def begin_ending(
    session: Session,
    grant_ids: Sequence[int],
    reason: EndReason,
    by: str,
    note: str,
    retry_at: datetime,
    *,
    due_by: datetime | None = None,
) -> list[EndingGrant]:
    """Turn the grants among `grant_ids` that may end for `reason` `ending`; the others
    (ended, or already ending) are left as they are. With `due_by` (an expiry), only those
    whose end has come by then: an extension that committed after the grants were picked as
    due has moved that grant's end, and it goes on."""
    sources = ending_from(reason)
    for source in sources:
        check_transition(source, GrantStatus.ENDING)
    where: ColumnElement[bool] = GrantRow.status.in_(sources)
    if due_by is not None:
        where = and_(where, GrantRow.end_at <= due_by)
    values = {
        "status": GrantStatus.ENDING,
        "end_reason": reason,
        "ended_by": by,
        "end_note": note,
        "retry_at": retry_at,
    }
    return _update(session, grant_ids, where, values)


def renew_endings(
    session: Session, grant_ids: Sequence[int], retry_at: datetime
) -> list[EndingGrant]:
    """The grants among `grant_ids` already `ending` (a retry, or an ending taken over):
    their next attempt is at `retry_at`; their first reason stands."""
    return _update(session, grant_ids, _STILL_ENDING, {"retry_at": retry_at})


def confirm_ended(
    session: Session, endings: Sequence[EndingGrant], now: datetime
) -> list[EndingGrant]:
    """The provider confirmed: those still `ending` land where their reason leads."""
    landed = []
    for status, batch in _by_landing(endings).items():
        check_transition(GrantStatus.ENDING, status)
        values = {"status": status, "ended_at": now, "retry_at": None, "last_error": None}
        landed += _update(session, [e.id for e in batch], _STILL_ENDING, values)
    return sorted(landed, key=lambda g: g.id)


def fail_ending(
    session: Session,
    endings: Sequence[EndingGrant],
    error: str,
    retry_at: Callable[[int], datetime],
) -> list[EndingGrant]:
    """The provider did not confirm: one more attempt counted, the next one at
    `retry_at(attempts)`. Those no longer `ending` (another runner finished them) are left."""
    values = {"end_attempts": GrantRow.end_attempts + 1, "last_error": error}
    failed = _update(session, [e.id for e in endings], _STILL_ENDING, values)
    for attempts in sorted({g.attempts for g in failed}):
        ids = [g.id for g in failed if g.attempts == attempts]
        _update(session, ids, _STILL_ENDING, {"retry_at": retry_at(attempts)})
    return failed


_STILL_ENDING = GrantRow.status == GrantStatus.ENDING


def _update(
    session: Session,
    grant_ids: Sequence[int],
    where: ColumnElement[bool],
    values: dict[str, Any],
) -> list[EndingGrant]:
    """UPDATE the grants among `grant_ids` that match `where`, locked in id order; what they
    are now. Grants this session holds as objects are brought up to date too."""
    found = []
    ids = sorted(set(grant_ids))
    # SQLite's writer holds the whole database already; PostgreSQL locks rows, in id order.
    ordered_locks = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        if ordered_locks:
            session.execute(select(GrantRow.id).where(GrantRow.id.in_(chunk)).with_for_update())
        statement = (
            update(GrantRow).where(GrantRow.id.in_(chunk), where).values(values).returning(*_FACTS)
        )
        found += [ending_grant(row) for row in session.execute(statement)]
    return sorted(found, key=lambda g: g.id)


def ending_grant(row: GrantRow | AnyRow) -> EndingGrant:
    """What the events of a grant's ending carry, from its stored row (or its `_FACTS`, in
    order: unpacked, as a Row's names cost more than the rest of this together)."""
    facts = tuple(getattr(row, c.key) for c in _FACTS) if isinstance(row, GrantRow) else row
    id_, request_id, user, group, end_at, reason, note, status, attempts, last_error = facts
    return EndingGrant(
        id_,
        request_id,
        user,
        group,
        end_at,
        _REASONS[reason or EndReason.EXPIRED],
        note or "",
        _STATUSES[status],
        attempts,
        last_error,
    )


def _by_landing(endings: Sequence[EndingGrant]) -> dict[GrantStatus, list[EndingGrant]]:
    found: dict[GrantStatus, list[EndingGrant]] = {}
    for ending in endings:
        found.setdefault(ended_status(ending.reason), []).append(ending)
    return found
