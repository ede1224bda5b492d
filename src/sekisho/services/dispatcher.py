"""The dispatcher: delivers the outbox, with retries, so that each message arrives once.

Why a crash or a restart loses none and sends none twice:
- A message is in the outbox only if the change it tells of committed (same transaction).
- A dispatcher *claims* due messages under a lease (`lease_until`, `claimed_by`), in one
  write transaction (row locks with SKIP LOCKED on PostgreSQL; SQLite has one writer): no two
  dispatchers hold one message at once, on one node or many.
- It marks a message delivered only after the channel confirmed it (HTTP 2xx, SMTP 250 after
  DATA, an SNS MessageId). A failure schedules a retry with exponential backoff.
- If it dies between the channel's confirmation and the mark, the message is still pending;
  when the lease runs out, another pass sends it again *with the same idempotency key*, and
  the receiver, which keeps the keys it has seen, takes it once. That window is the only way a
  key reaches a receiver twice; the lease outlasts any send, so a slow dispatcher is not
  overtaken.

In order: a message about a request (or its grant) is not claimed while an earlier one with
its order key, channel and recipient is pending (due, failing, or leased, by a dead dispatcher
too), so nobody hears of an ending before the activation. One given up holds nothing back.

A failed message is retried with backoff on its own, and the batch goes on; when a message
about another subject fails too, the channel is taken as failing and its other messages wait
for the same retry instead of each timing out. It never blocks the workflow (services only
write the outbox) nor the other channels (each channel's batch runs on its own worker thread).
`sekisho notify status` shows, per channel, what is pending, failing, delivered and given up.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import ColumnElement, Table, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from sekisho.domain.access import Channel
from sekisho.domain.timespec import backoff
from sekisho.notify.base import Delivery, DeliveryFailed, Sender, redact, url_secrets
from sekisho.notify.channels import open_sender
from sekisho.notify.message import Message
from sekisho.notify.reports import ORPHAN_AFTER
from sekisho.services.events import Wakeup
from sekisho.services.lease import node_id
from sekisho.store import outage
from sekisho.store.tables import NotificationRow, ReportLineRow

if TYPE_CHECKING:
    from sekisho.services.core import Core

log = structlog.get_logger(__name__)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
BATCH = 100  # messages claimed at once
WORKERS = 4  # channels sent to at once
MARK_EVERY = 16  # deliveries recorded per transaction at most ...
MARK_WITHIN = 0.05  # ... or after this many (wall-clock) seconds
ERROR_PAUSE = timedelta(seconds=1)
PRUNE_EVERY = timedelta(hours=1)

SenderFactory = Callable[[Channel], Sender]


@dataclass(frozen=True)
class _Claimed:
    id: int
    key: str
    event: str
    channel: str
    recipient: str | None
    message: dict[str, Any]
    order_key: str | None = None


@dataclass
class DispatchReport:
    delivered: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # id -> error (will be retried)
    gave_up: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)  # its channel failed first; untried

    def add(self, other: DispatchReport) -> None:
        self.delivered += other.delivered
        self.failed.update(other.failed)
        self.gave_up += other.gave_up
        self.deferred += other.deferred


class Dispatcher:
    def __init__(
        self,
        core: Core,
        *,
        holder: str | None = None,
        senders: SenderFactory | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._core = core
        self.holder = holder or f"dispatcher:{node_id()}"
        self._environ = environ
        self._senders = senders or (lambda channel: open_sender(channel, environ))
        self._wake = Wakeup()
        self._stopping = False
        self._pruned_at: datetime | None = None
        self._open: dict[str, Sender] = {}  # senders of this pass, by channel
        self._open_lock = threading.Lock()
        self.passes = 0

    # -- one pass -------------------------------------------------------------------------

    def run_pass(self) -> DispatchReport:
        """Deliver everything due now (`sekisho notify dispatch`)."""
        core = self._core
        report = DispatchReport()
        core.outbox.compose_reports(older_than=ORPHAN_AFTER)
        try:
            while True:
                claimed = self._claim()
                if not claimed:
                    break
                report.add(self._deliver(claimed))
                # A round sends at most one message of each order key: what it delivered
                # may have freed the next of the same key (a read tells; no write lock).
                if len(claimed) < BATCH and not self._due_now():
                    break
        finally:
            self._close_senders()
        self._prune()
        self.passes += 1
        return report

    def deliver(self, ids: list[int]) -> DispatchReport:
        """Deliver these messages now, if pending and free (`sekisho notify test`)."""
        claimed = self._claim(ids)
        try:
            return self._deliver(claimed) if claimed else DispatchReport()
        finally:
            self._close_senders()

    def next_due(self) -> datetime | None:
        """When a pass would next find something to do."""
        core = self._core
        with core.db.read() as s:
            candidates = [
                s.scalar(
                    select(func.min(NotificationRow.next_at)).where(
                        NotificationRow.status == PENDING,
                        NotificationRow.lease_until.is_(None),
                        _first_of_its_order(),  # one held back waits for the earlier one
                    )
                ),
                s.scalar(
                    select(func.min(NotificationRow.lease_until)).where(
                        NotificationRow.status == PENDING,
                        NotificationRow.lease_until.is_not(None),
                    )
                ),
                core.outbox.next_orphan(s),
            ]
        found = [c for c in candidates if c is not None]
        return min(found) if found else None

    def _due_now(self) -> bool:
        due = self.next_due()
        return due is not None and due <= self._core.now()

    # -- the loop in `sekisho serve` ------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True
        self._wake()

    async def run(self) -> None:
        """Deliver whatever is due; sleep until the next due message or retry, or an event."""
        core = self._core
        self._wake.bind()
        unsubscribe = core.bus.subscribe(self._wake)
        try:
            while not self._stopping:
                self._wake.event.clear()
                try:
                    due = await asyncio.to_thread(self.next_due)
                    if due is not None and due <= core.now():
                        report = await asyncio.to_thread(self.run_pass)
                        if report.delivered or report.failed or report.gave_up:
                            log.info(
                                "notifications",
                                delivered=len(report.delivered),
                                failed=len(report.failed),
                                gave_up=len(report.gave_up),
                            )
                        due = await asyncio.to_thread(self.next_due)
                except Exception as error:
                    what = "notification dispatch failed; retrying shortly"
                    outage.loop_failed(core.db, error, log, what)
                    due = core.now() + ERROR_PAUSE
                await core.clock.wait_until(due, self._wake.event)
        finally:
            unsubscribe()

    # -- claiming, sending, recording -------------------------------------------------------

    def _claim(self, ids: list[int] | None = None) -> list[_Claimed]:
        core = self._core
        now = core.now()
        stmt = select(NotificationRow).where(
            NotificationRow.status == PENDING, _first_of_its_order()
        )
        if ids is None:
            stmt = stmt.where(
                NotificationRow.next_at <= now,
                or_(NotificationRow.lease_until.is_(None), NotificationRow.lease_until <= now),
            )
        else:
            stmt = stmt.where(
                NotificationRow.id.in_(ids),
                or_(NotificationRow.lease_until.is_(None), NotificationRow.lease_until <= now),
            )
        stmt = stmt.order_by(NotificationRow.id).limit(BATCH).with_for_update(skip_locked=True)
        with core.db.write() as s:
            rows = list(s.scalars(stmt))
            for row in rows:
                row.lease_until = now + core.settings.notify_lease
                row.claimed_by = self.holder
            return [
                _Claimed(r.id, r.key, r.event, r.channel, r.recipient, r.message, r.order_key)
                for r in rows
            ]

    def _deliver(self, claimed: list[_Claimed]) -> DispatchReport:
        by_channel: dict[str, list[_Claimed]] = defaultdict(list)
        for item in claimed:
            by_channel[item.channel].append(item)
        model = self._core.models.model()
        report = DispatchReport()
        if len(by_channel) == 1:
            ((name, items),) = by_channel.items()
            report.add(self._deliver_channel(model.notifications.channel(name), name, items))
            return report
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(by_channel))) as pool:
            futures = [
                pool.submit(self._deliver_channel, model.notifications.channel(name), name, items)
                for name, items in by_channel.items()
            ]
            for future in futures:
                report.add(future.result())
        return report

    def _deliver_channel(
        self, channel: Channel | None, name: str, items: list[_Claimed]
    ) -> DispatchReport:
        """Send the channel's batch in order. A failure is retried with backoff on its own
        (the messages after it with its order key wait, by the claim's rule) and the batch
        goes on; only when a message about another subject fails too is the channel taken as
        failing: its other messages then wait for the retry, untried (a probe, not a timeout
        each), so one failing subject holds up nothing else."""
        report = DispatchReport()
        if channel is None:
            self._give_up(items, f"channel {name} is no longer in the model", report)
            return report
        done: list[tuple[_Claimed, str]] = []
        suspect: _Claimed | None = None  # failed; the channel may still work
        since = time.monotonic()
        try:
            for index, item in enumerate(items):
                try:
                    receipt = self._send(channel, item)
                except _ChannelFailed as failed:
                    self._failed(item, failed.error, items[index + 1 :], report)
                    break
                except DeliveryFailed as exc:
                    self._drop_sender(name)
                    if suspect is not None and not _same_subject(suspect, item):
                        self._failed(item, str(exc), items[index + 1 :], report)
                        break  # two subjects failed: it is the channel
                    self._failed(item, str(exc), [], report, defer_others=False)
                    suspect = suspect or item
                    continue
                suspect = None
                if not done:
                    since = time.monotonic()
                done.append((item, receipt))
                if len(done) >= MARK_EVERY or time.monotonic() - since >= MARK_WITHIN:
                    self._delivered(done, report)
                    done = []
        finally:
            if done:
                self._delivered(done, report)
        return report

    def _send(self, channel: Channel, item: _Claimed) -> str:
        """One message through the channel's sender: its receipt; DeliveryFailed for this
        message; _ChannelFailed when no sender could even be opened (nothing can go)."""
        try:
            sender = self._sender(channel)
        except DeliveryFailed as exc:
            raise _ChannelFailed(str(exc)) from None
        except Exception as exc:  # a bug: still a failed delivery, retried and shown
            self._log_bug("opening a notification sender failed", channel, item, exc)
            raise _ChannelFailed(f"internal error: {type(exc).__name__}") from None
        delivery = Delivery(item.key, item.event, Message.from_json(item.message), item.recipient)
        try:
            return sender.send(delivery)
        except DeliveryFailed:
            raise
        except Exception as exc:  # a bug in a sender must not stop the others
            self._log_bug("notification sender failed", channel, item, exc)
            raise DeliveryFailed(f"internal error: {type(exc).__name__}") from None

    def _log_bug(self, what: str, channel: Channel, item: _Claimed, exc: Exception) -> None:
        """The traceback, for whoever fixes the bug, without the channel's secrets (an
        exception's text may quote a secret URL)."""
        env = os.environ if self._environ is None else self._environ
        secrets = url_secrets(env.get(channel.url_env or "", ""))
        secrets += [env.get(channel.secret_env or ""), env.get(channel.password_env or "")]
        trace = "".join(traceback.format_exception(exc))
        log.error(what, channel=channel.name, delivery=item.key, error=redact(trace, secrets))

    def _sender(self, channel: Channel) -> Sender:
        """One sender per channel and pass: connections (and TLS set-up) are reused."""
        with self._open_lock:
            sender = self._open.get(channel.name)
            if sender is None:
                sender = self._open[channel.name] = self._senders(channel)
            return sender

    def _drop_sender(self, name: str) -> None:
        with self._open_lock:
            sender = self._open.pop(name, None)
        if sender is not None:
            _close(sender)

    def _close_senders(self) -> None:
        with self._open_lock:
            senders, self._open = list(self._open.values()), {}
        for sender in senders:
            _close(sender)

    def _delivered(self, done: list[tuple[_Claimed, str]], report: DispatchReport) -> None:
        core = self._core
        now = core.now()
        table = cast(Table, NotificationRow.__table__)
        # Whoever holds it now: the channel confirmed it, so it is delivered. One statement,
        # executed for the batch (Core, so that the ORM does not build one per row).
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
        with core.db.write() as s:
            s.execute(mark, [{"b_id": i.id, "b_receipt": receipt[:256]} for i, receipt in done])
        report.delivered += [item.id for item, _ in done]

    def _failed(
        self,
        item: _Claimed,
        error: str,
        rest: list[_Claimed],
        report: DispatchReport,
        *,
        defer_others: bool = True,
    ) -> None:
        """Retry `item` with backoff; unless told otherwise, the channel's other messages wait
        for the same retry (the channel is failing)."""
        core = self._core
        settings = core.settings
        now = core.now()
        error = error[:1000]
        with core.db.write() as s:
            row = s.get(NotificationRow, item.id, with_for_update=True)
            if row is None or row.status != PENDING or row.claimed_by != self.holder:
                return  # another dispatcher took it over meanwhile
            row.attempts += 1
            row.last_attempt_at = row.last_error_at = now
            row.last_error, row.lease_until = error, None
            if now - row.created_at >= settings.notify_give_up:
                row.status = FAILED
                retry = now + settings.notify_retry_first
                report.gave_up.append(row.id)
            else:
                row.next_at = retry = now + backoff(
                    row.attempts, settings.notify_retry_first, settings.notify_retry_max
                )
                report.failed[row.id] = error
            # The channel is failing: its other pending messages wait, untried, for the retry.
            if defer_others:
                self._defer_channel(s, item, rest, now, retry)
        report.deferred += [r.id for r in rest]
        log.warning(
            "notification not delivered",
            channel=item.channel,
            delivery=item.key,
            attempts=row.attempts,
            error=error,
            gave_up=row.status == FAILED,
        )

    @staticmethod
    def _defer_channel(
        s: Session, item: _Claimed, rest: list[_Claimed], now: datetime, retry: datetime
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

    def _give_up(self, items: list[_Claimed], error: str, report: DispatchReport) -> None:
        core = self._core
        now = core.now()
        with core.db.write() as s:
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
        report.gave_up += [i.id for i in items]
        log.warning("notifications given up", channel=items[0].channel, count=len(items))

    def _prune(self) -> None:
        """Forget delivered and given-up messages (and gathered report lines) after the
        retention; at most once an hour."""
        core = self._core
        now = core.now()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        before = now - core.settings.notify_retention
        with core.db.write() as s:
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


class _ChannelFailed(Exception):
    """No sender for the channel (a variable not set, a URL that is none): nothing can go."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _same_subject(one: _Claimed, other: _Claimed) -> bool:
    return one.order_key is not None and one.order_key == other.order_key


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


def _close(sender: Sender) -> None:
    try:
        sender.close()
    except Exception:
        log.exception("closing a notification sender failed")
