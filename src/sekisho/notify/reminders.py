"""Reminders before a grant ends: scheduled when access starts, sent by the sweep when due.

A grant's activation writes a reminder row due `remind_before` its end (a grant shorter than
that gets none); an early end drops it. The sweep's `SendReminders` takes the due rows and
records that those grants end soon; the effect handler writes each holder's message.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel, NotifyEvent
from sekisho.domain.events import GrantsEndingSoon
from sekisho.domain.grants import is_active
from sekisho.notify.routing import routed
from sekisho.ports import ModelSource
from sekisho.store.grants import window
from sekisho.store.tables import GrantRow, ReminderRow, RequestRow
from sekisho.store.unit_of_work import Store

BATCH = 500  # reminders taken at once


def schedule(s: Session, model: AccessModel, row: RequestRow, grant: GrantRow) -> None:
    """At activation: remind the holder `remind_before` the end, if the route asks for it."""
    if not routed(model, NotifyEvent.GRANT_ENDING_SOON, row.template):
        return
    due = grant.end_at - model.notifications.remind_before
    if due > grant.start_at:  # a grant shorter than the lead time gets none
        s.add(ReminderRow(grant_id=grant.id, due_at=due))


def drop(s: Session, grant_id: int) -> None:
    """At the end: nothing left to remind of."""
    s.execute(delete(ReminderRow).where(ReminderRow.grant_id == grant_id))


def next_due(s: Session) -> datetime | None:
    """The earliest reminder: one of the sweep's deadlines."""
    due: datetime | None = s.scalar(select(func.min(ReminderRow.due_at)))
    return due


class SendReminders:
    """The sweep's step: every due reminder of a grant still active becomes a message."""

    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def execute(self, limit: int = BATCH) -> list[int]:
        """Take the due reminders; return the grants whose holders are told."""
        now = self._clock.now()
        with self._store.read() as s:
            first = next_due(s)
        if first is None or first > now:
            return []  # the common case: no write transaction at all
        with self._store.write() as uow:
            due = _take_due(uow.session, now, limit)
            if not due:
                return []
            reminded = _still_active(uow.session, self._models.model(uow.session), due, now)
            if reminded:
                uow.record(GrantsEndingSoon(now, tuple(reminded)))
        return reminded


def _take_due(s: Session, now: datetime, limit: int) -> list[ReminderRow]:
    """The due reminders, locked (another node's sweep skips them) and deleted: each is
    sent once."""
    due = list(
        s.scalars(
            select(ReminderRow)
            .where(ReminderRow.due_at <= now)
            .order_by(ReminderRow.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for reminder in due:
        s.delete(reminder)
    return due


def _still_active(
    s: Session, model: AccessModel, due: list[ReminderRow], now: datetime
) -> list[int]:
    """The reminders' grants still active and still routed: an ended one has nothing to say."""
    found = []
    for reminder in due:
        grant = s.get(GrantRow, reminder.grant_id)
        if grant is None or not is_active(window(grant), now):
            continue
        row = s.get_one(RequestRow, grant.request_id)
        if routed(model, NotifyEvent.GRANT_ENDING_SOON, row.template):
            found.append(grant.id)
    return found
