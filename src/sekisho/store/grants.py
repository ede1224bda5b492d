"""Grants in the store: the one place that says in SQL which grants are active, which hold a
membership, and which are due to end.

`domain.grants` says the same in Python (`is_active`, `holds_membership`); the clauses here are
its SQL twins, so a query narrows the rows and the domain decides for each instant with the
same rule. Nothing else writes `status = 'active'` as a filter: callers compose these clauses
(`select(GrantRow).where(active_at(now))`) or call the queries below, which hand back domain
values (`GrantWindow`, ids, instants), not rows to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from sekisho.domain.grants import GrantStatus, GrantWindow, check_transition
from sekisho.store.tables import GrantRow

# The grants the provider keeps a membership for (`domain.grants.holds_membership`).
LIVE = (GrantStatus.ACTIVE, GrantStatus.ACTIVATING)
# The grants an ending may take: usable ones, and endings the provider has not confirmed.
ENDABLE = (GrantStatus.ACTIVE, GrantStatus.ENDING)

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


def expiring_by(at: Instant) -> ColumnElement[bool]:
    """Due to expire: still active, and its end has come."""
    return and_(GrantRow.status == GrantStatus.ACTIVE, GrantRow.end_at <= at)


def retry_due_by(at: Instant) -> ColumnElement[bool]:
    """An ending the provider has not confirmed, whose next attempt has come."""
    return and_(GrantRow.status == GrantStatus.ENDING, GrantRow.retry_at <= at)


# -- queries ----------------------------------------------------------------------------------


def window(row: GrantRow) -> GrantWindow:
    return GrantWindow(
        row.id, row.user, row.group_name, GrantStatus(row.status), row.start_at, row.end_at
    )


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
        rows = session.scalars(
            select(GrantRow).where(
                GrantRow.user.in_(users[start : start + 500]), holding_membership(at)
            )
        )
        for row in rows:
            if (row.user, row.group_name) in wanted:
                found[(row.user, row.group_name)].append(window(row))
    return found


def membership_holders(session: Session, at: datetime) -> list[GrantWindow]:
    """Every grant that holds a membership at `at`, for every user and group."""
    return [window(r) for r in session.scalars(select(GrantRow).where(holding_membership(at)))]


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


def lock_endable(session: Session, grant_ids: Sequence[int]) -> list[GrantRow]:
    """The endable grants among `grant_ids`, locked for this transaction, in id order."""
    return list(
        session.scalars(
            select(GrantRow)
            .where(GrantRow.id.in_(grant_ids), GrantRow.status.in_(ENDABLE))
            .order_by(GrantRow.id)
            .with_for_update()
        )
    )


def lock_active_of(
    session: Session, *, user: str | None = None, groups: Sequence[str] = ()
) -> list[GrantRow]:
    """The active grants of `user` (or, without one, in `groups`), locked, in id order."""
    where = GrantRow.user == user if user is not None else GrantRow.group_name.in_(groups)
    return list(
        session.scalars(
            select(GrantRow)
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


def lock_ending(session: Session, grant_ids: Sequence[int]) -> dict[int, GrantRow]:
    """The grants among `grant_ids` still `ending`, locked for this transaction, by id."""
    rows = session.scalars(
        select(GrantRow)
        .where(GrantRow.id.in_(grant_ids), GrantRow.status == GrantStatus.ENDING)
        .order_by(GrantRow.id)
        .with_for_update()
    )
    return {row.id: row for row in rows}


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
