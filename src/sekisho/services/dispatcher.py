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

This module sends; the rows' bookkeeping (claim, mark delivered, retry, give up, prune) is
`sekisho.notify.deliveries`'. Neither writes timeline, audit or bus: delivering is not a use
case but its infrastructure, and a failed delivery is a log line and a channel's status.
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
from typing import Protocol

import structlog

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel, Channel
from sekisho.notify.base import Delivery, DeliveryFailed, Sender, redact, url_secrets
from sekisho.notify.channels import open_sender
from sekisho.notify.deliveries import BATCH, Claimed, Deliveries
from sekisho.notify.message import Message
from sekisho.notify.reports import ORPHAN_AFTER
from sekisho.ports import ModelSource
from sekisho.services.events import EventBus, Wakeup
from sekisho.services.lease import node_id
from sekisho.store import outage
from sekisho.store.db import Database

log = structlog.get_logger(__name__)

WORKERS = 4  # channels sent to at once
MARK_EVERY = 16  # deliveries recorded per transaction at most ...
MARK_WITHIN = 0.05  # ... or after this many (wall-clock) seconds
ERROR_PAUSE = timedelta(seconds=1)
PRUNE_EVERY = timedelta(hours=1)

SenderFactory = Callable[[Channel], Sender]


class ChannelDirectory(Protocol):
    """The channels by their outbox names: the model's, or also Shared Signals streams."""

    def channel(self, model: AccessModel, name: str) -> Channel | None: ...

    def why_gone(self, name: str) -> str:
        """What a message to a channel that no longer exists is told."""
        ...


class ModelChannels:
    """The model's channels only."""

    def channel(self, model: AccessModel, name: str) -> Channel | None:
        return model.notifications.channel(name)

    def why_gone(self, name: str) -> str:
        return f"channel {name} is no longer in the model"


class ComposesReports(Protocol):
    def execute(self, older_than: timedelta = ...) -> int: ...


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
    """Delivers the outbox: `deliveries` keeps the rows' books; this sends. `compose_reports`
    gathers report lines a dead pass left; `holder` names this dispatcher on its claims."""

    def __init__(
        self,
        deliveries: Deliveries,
        compose_reports: ComposesReports,
        models: ModelSource,
        clock: Clock,
        bus: EventBus,
        db: Database,  # whose outage a failed pass reports
        *,
        holder: str | None = None,
        senders: SenderFactory | None = None,
        channels: ChannelDirectory | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._deliveries, self._compose_reports = deliveries, compose_reports
        self._models, self._clock, self._bus, self._db = models, clock, bus, db
        self.holder = holder or f"dispatcher:{node_id()}"
        self._environ = environ
        self._senders = senders or (lambda channel: open_sender(channel, environ))
        self._channels = channels or ModelChannels()
        self._wake = Wakeup()
        self._stopping = False
        self._pruned_at: datetime | None = None
        self._open: dict[str, Sender] = {}  # senders of this pass, by channel
        self._open_lock = threading.Lock()
        self.passes = 0

    # -- one pass -------------------------------------------------------------------------

    def run_pass(self) -> DispatchReport:
        """Deliver everything due now (`sekisho notify dispatch`)."""
        report = DispatchReport()
        self._compose_reports.execute(ORPHAN_AFTER)
        try:
            while True:
                claimed = self._deliveries.claim(self.holder)
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
        claimed = self._deliveries.claim(self.holder, ids)
        try:
            return self._deliver(claimed) if claimed else DispatchReport()
        finally:
            self._close_senders()

    def next_due(self) -> datetime | None:
        """When a pass would next find something to do."""
        return self._deliveries.next_due()

    def _due_now(self) -> bool:
        due = self.next_due()
        return due is not None and due <= self._clock.now()

    # -- the loop in `sekisho serve` ------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True
        self._wake()

    async def run(self) -> None:
        """Deliver whatever is due; sleep until the next due message or retry, or an event."""
        clock = self._clock
        self._wake.bind()
        unsubscribe = self._bus.subscribe(self._wake)
        try:
            while not self._stopping:
                self._wake.event.clear()
                try:
                    due = await asyncio.to_thread(self.next_due)
                    if due is not None and due <= clock.now():
                        _log_pass(await asyncio.to_thread(self.run_pass))
                        due = await asyncio.to_thread(self.next_due)
                except Exception as error:
                    what = "notification dispatch failed; retrying shortly"
                    outage.loop_failed(self._db, error, log, what)
                    due = clock.now() + ERROR_PAUSE
                await clock.wait_until(due, self._wake.event)
        finally:
            unsubscribe()

    # -- sending, recording -----------------------------------------------------------------

    def _deliver(self, claimed: list[Claimed]) -> DispatchReport:
        by_channel: dict[str, list[Claimed]] = defaultdict(list)
        for item in claimed:
            by_channel[item.channel].append(item)
        model = self._models.model()
        report = DispatchReport()
        if len(by_channel) == 1:
            ((name, items),) = by_channel.items()
            report.add(self._deliver_channel(self._channels.channel(model, name), name, items))
            return report
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(by_channel))) as pool:
            futures = [
                pool.submit(self._deliver_channel, self._channels.channel(model, name), name, items)
                for name, items in by_channel.items()
            ]
            for future in futures:
                report.add(future.result())
        return report

    def _deliver_channel(
        self, channel: Channel | None, name: str, items: list[Claimed]
    ) -> DispatchReport:
        """Send the channel's batch in order. A failure is retried with backoff on its own
        (the messages after it with its order key wait, by the claim's rule) and the batch
        goes on; only when a message about another subject fails too is the channel taken as
        failing: its other messages then wait for the retry, untried (a probe, not a timeout
        each), so one failing subject holds up nothing else."""
        report = DispatchReport()
        if channel is None:
            self._give_up(items, self._channels.why_gone(name), report)
            return report
        done: list[tuple[Claimed, str]] = []
        suspect: Claimed | None = None  # failed; the channel may still work
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

    def _send(self, channel: Channel, item: Claimed) -> str:
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

    def _log_bug(self, what: str, channel: Channel, item: Claimed, exc: Exception) -> None:
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

    def _delivered(self, done: list[tuple[Claimed, str]], report: DispatchReport) -> None:
        self._deliveries.delivered(done)
        report.delivered += [item.id for item, _ in done]

    def _failed(
        self,
        item: Claimed,
        error: str,
        rest: list[Claimed],
        report: DispatchReport,
        *,
        defer_others: bool = True,
    ) -> None:
        """Retry `item` with backoff; unless told otherwise, the channel's other messages wait
        for the same retry (the channel is failing)."""
        error = error[:1000]
        retried = self._deliveries.failed(item, self.holder, error, rest, defer_others=defer_others)
        if retried is None:
            return  # another dispatcher took it over meanwhile
        if retried.gave_up:
            report.gave_up.append(retried.id)
        else:
            report.failed[retried.id] = error
        report.deferred += [r.id for r in rest]
        log.warning(
            "notification not delivered",
            channel=item.channel,
            delivery=item.key,
            attempts=retried.attempts,
            error=error,
            gave_up=retried.gave_up,
        )

    def _give_up(self, items: list[Claimed], error: str, report: DispatchReport) -> None:
        self._deliveries.give_up(items, error)
        report.gave_up += [i.id for i in items]
        log.warning("notifications given up", channel=items[0].channel, count=len(items))

    def _prune(self) -> None:
        """Forget what the retention is over, at most once an hour."""
        now = self._clock.now()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        self._deliveries.prune()


def _log_pass(report: DispatchReport) -> None:
    if report.delivered or report.failed or report.gave_up:
        log.info(
            "notifications",
            delivered=len(report.delivered),
            failed=len(report.failed),
            gave_up=len(report.gave_up),
        )


class _ChannelFailed(Exception):
    """No sender for the channel (a variable not set, a URL that is none): nothing can go."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _same_subject(one: Claimed, other: Claimed) -> bool:
    return one.order_key is not None and one.order_key == other.order_key


def _close(sender: Sender) -> None:
    try:
        sender.close()
    except Exception:
        log.exception("closing a notification sender failed")
