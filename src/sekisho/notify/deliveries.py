"""The outbox's rows as the dispatcher works them: claim, mark delivered, retry, give up, prune.

Infrastructure, not a use case: this bookkeeping changes only the outbox's own columns (the
lease, attempts, the next try, the status) and never writes timeline, audit or bus; what a
message tells of was recorded when it was written. A failed delivery is logged and shown by
`sekisho notify status`.

A row is claimed under a lease (`lease_until`, `claimed_by`) in one write transaction (row
locks with SKIP LOCKED on PostgreSQL; SQLite has one writer): no two dispatchers hold one
message at once. A message is not claimed while an earlier one with its order key, channel
and recipient is pending, so nobody hears of an ending before the activation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from sekisho.clock import Clock
from sekisho.config import Settings
from sekisho.domain.access import NotifyEvent
from sekisho.domain.timespec import backoff
from sekisho.notify.reports import OLDEST_ORPHAN, orphans_due
from sekisho.store.db import Database
from sekisho.store.tables import NotificationRow, ReportLineRow

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
BATCH = 100  # messages claimed at once


@dataclass(frozen=True)
class DeliveryPolicy:
    lease: timedelta  # a claim outlasts any send
    retry_first: timedelta
    retry_max: timedelta
    give_up: timedelta  # after this long undelivered
    retention: timedelta  # delivered and given-up rows are kept this long

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            lease=settings.notify_lease,
            retry_first=settings.notify_retry_first,
            retry_max=settings.notify_retry_max,
            give_up=settings.notify_give_up,
            retention=settings.notify_retention,
        )


@dataclass(frozen=True)
class Claimed:
    id: int
    key: str
    event: str
    channel: str
    recipient: str | None
    message: dict[str, Any]
    order_key: str | None = None


@dataclass(frozen=True)
class Retried:
    """A failed delivery, recorded: tried again later, or given up."""

    id: int
    attempts: int
    gave_up: bool


class Deliveries:
    def __init__(self, db: Database, clock: Clock, policy: DeliveryPolicy) -> None:
        self._db, self._clock, self._policy = db, clock, policy

    def claim(self, holder: str, ids: list[int] | None = None) -> list[Claimed]:
        """Lease what is due (or these ids, if pending), first of its order, for `holder`."""
        now = self._clock.now()
        free = or_(NotificationRow.lease_until.is_(None), NotificationRow.lease_until <= now)
        chosen = NotificationRow.next_at <= now if ids is None else NotificationRow.id.in_(ids)
        stmt = (
            select(NotificationRow)
            .where(NotificationRow.status == PENDING, _first_of_its_order(), chosen, free)
            .order_by(NotificationRow.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        with self._db.write() as s:
            rows = list(s.scalars(stmt))
            for row in rows:
                row.lease_until = now + self._policy.lease
                row.claimed_by = holder
            return [
                Claimed(r.id, r.key, r.event, r.channel, r.recipient, r.message, r.order_key)
                for r in rows
            ]

    def receipts(self, channel: str, request_id: int) -> list[str]:
        """What `channel` confirmed for the approval requests of `request_id`, oldest first:
        the Slack app's `slack CHANNEL TS`, to update those messages in place."""
        query = (
            select(NotificationRow.receipt)
            .where(
                NotificationRow.channel == channel,
                NotificationRow.request_id == request_id,
                NotificationRow.event == NotifyEvent.APPROVAL_NEEDED,
                NotificationRow.status == DELIVERED,
            )
            .order_by(NotificationRow.id)
        )
        with self._db.read() as s:
            return [r for r in s.scalars(query) if r and r.startswith("slack ")]

    def next_due(self) -> datetime | None:
        """When a pass would next find something to do: a message due, a lease run out, or
        report lines a dead pass left."""
        with self._db.read() as s:
            due, lease_ends, oldest_orphan = s.execute(_NEXT_DUE).one()
        found = [c for c in (due, lease_ends, orphans_due(oldest_orphan)) if c is not None]
        return min(found) if found else None

    def delivered(self, done: list[tuple[Claimed, str]]) -> None:
        """The channel confirmed these (with its receipts): delivered, whoever holds them now.
        One statement executed for the batch (Core, so that the ORM does not build one per
        row)."""
        now = self._clock.now()
        table = cast(Table, NotificationRow.__table__)
        mark = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.status == PENDING)
            .values(
                status=DELIVERED,
                delivered_at=now,
                receipt=bindparam("b_receipt"),
                lease_until=None,
                attempts=table.c.attempts + 1,
                last_attempt_at=now,
            )
        )
        with self._db.write() as s:
            s.execute(mark, [{"b_id": i.id, "b_receipt": receipt[:256]} for i, receipt in done])

    def failed(
        self, item: Claimed, holder: str, error: str, rest: list[Claimed], *, defer_others: bool
    ) -> Retried | None:
        """Retry `item` with backoff, or give it up once too old; unless told otherwise, the
        channel's other messages wait for the same retry (the channel is failing). None when
        another dispatcher took it over meanwhile."""
        policy, now = self._policy, self._clock.now()
        with self._db.write() as s:
            row = s.get(NotificationRow, item.id, with_for_update=True)
            if row is None or row.status != PENDING or row.claimed_by != holder:
                return None
            row.attempts += 1
            row.last_attempt_at = row.last_error_at = now
            row.last_error, row.lease_until = error, None
            if now - row.created_at >= policy.give_up:
                row.status = FAILED
                retry = now + policy.retry_first
            else:
                row.next_at = retry = now + backoff(
                    row.attempts, policy.retry_first, policy.retry_max
                )
            if defer_others:
                _defer_channel(s, item, rest, now, retry)
            return Retried(row.id, row.attempts, row.status == FAILED)

    def give_up(self, items: list[Claimed], error: str) -> None:
        """These cannot be sent at all (their channel left the model): failed, untried."""
        now = self._clock.now()
        with self._db.write() as s:
            s.execute(
                update(NotificationRow)
                .where(
                    NotificationRow.id.in_([i.id for i in items]),
                    NotificationRow.status == PENDING,
                )
                .values(
                    status=FAILED,
                    last_error=error,
                    last_error_at=now,
                    lease_until=None,
                    last_attempt_at=now,
                )
            )

    def prune(self) -> None:
        """Forget delivered and given-up messages (and gathered report lines) after the
        retention."""
        before = self._clock.now() - self._policy.retention
        with self._db.write() as s:
            s.execute(
                delete(NotificationRow).where(
                    NotificationRow.status.in_((DELIVERED, FAILED)),
                    NotificationRow.created_at < before,
                )
            )
            s.execute(
                delete(ReportLineRow).where(
                    ReportLineRow.report_key.is_not(None), ReportLineRow.at < before
                )
            )


def _defer_channel(
    s: Session, item: Claimed, rest: list[Claimed], now: datetime, retry: datetime
) -> None:
    """The channel's other pending messages (the rest of this batch, and any not leased
    elsewhere) wait, untried, for `item`'s retry."""
    s.execute(
        update(NotificationRow)
        .where(
            NotificationRow.channel == item.channel,
            NotificationRow.status == PENDING,
            NotificationRow.id != item.id,
            NotificationRow.next_at < retry,
            or_(
                NotificationRow.lease_until.is_(None),
                NotificationRow.lease_until <= now,
                NotificationRow.id.in_([r.id for r in rest]),
            ),
        )
        .values(next_at=retry, lease_until=None)
    )


def _first_of_its_order() -> ColumnElement[bool]:
    """No earlier message with the same order key, channel and recipient is pending (due,
    failing or leased). Pending only: one given up (or delivered) holds nothing back."""
    earlier = aliased(NotificationRow)
    return ~exists().where(
        earlier.order_key == NotificationRow.order_key,
        earlier.channel == NotificationRow.channel,
        earlier.status == PENDING,
        earlier.recipient.is_not_distinct_from(NotificationRow.recipient),
        earlier.id < NotificationRow.id,
    )


# The dispatcher's deadlines in one statement, built once (asked at every wake-up): the first
# message due (one held back waits for the earlier one), the first lease to run out, and when
# report lines a dead pass left become the dispatcher's to gather.
_NEXT_DUE = select(
    select(func.min(NotificationRow.next_at))
    .where(
        NotificationRow.status == PENDING,
        NotificationRow.lease_until.is_(None),
        _first_of_its_order(),
    )
    .scalar_subquery(),
    select(func.min(NotificationRow.lease_until))
    .where(NotificationRow.status == PENDING, NotificationRow.lease_until.is_not(None))
    .scalar_subquery(),
    OLDEST_ORPHAN,
)
