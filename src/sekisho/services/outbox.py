"""The outbox as interfaces, the sweeper and tests call it (`core.outbox`).

The hooks are `Notices`' (the effect handlers call them, in the change's transaction); this
adds the outbox's own work, each piece in its module under `sekisho.notify`: reminders,
reports, a channel's test message, and each channel's status.

Why two objects: the effects write through the hooks alone, while the reminders and the
reports record domain events through the store, which applies the effects. The effects take
`Notices`, so building the store never needs this facade.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.notify import reminders, reports
from sekisho.notify.notices import Notices
from sekisho.notify.probe import QueueTestMessage
from sekisho.notify.reminders import SendReminders
from sekisho.notify.reports import ComposeReports
from sekisho.notify.status import ChannelStatus, ChannelStatuses
from sekisho.ports import ModelSource


class OutboxService(Notices):
    def __init__(
        self,
        models: ModelSource,
        clock: Clock,
        *,
        public_url: str,
        node: str,
        send_reminders: SendReminders,
        compose_reports: ComposeReports,
        queue_test: QueueTestMessage,
        statuses: ChannelStatuses,
    ) -> None:
        super().__init__(models, clock, public_url=public_url, node=node)
        self._send_reminders, self._compose_reports = send_reminders, compose_reports
        self._queue_test, self._statuses = queue_test, statuses

    def send_reminders(self, limit: int = reminders.BATCH) -> list[int]:
        """Write the reminders that are due; return their grants. Called by the sweep."""
        return self._send_reminders.execute(limit)

    def next_reminder(self, s: Session) -> datetime | None:
        return reminders.next_due(s)

    def compose_reports(self, older_than: timedelta = timedelta(0)) -> int:
        """Gather report lines no report has taken into one message per source; return how
        many reports were written."""
        return self._compose_reports.execute(older_than)

    def next_orphan(self, s: Session) -> datetime | None:
        return reports.next_orphan(s)

    def test(self, channel_name: str, to: list[str] | None = None) -> list[int]:
        """Queue a test message for one channel (ignoring routes); return the outbox ids."""
        return self._queue_test.execute(channel_name, to)

    def status(self, actor: Actor) -> list[ChannelStatus]:
        """Per channel: pending, failing, delivered, given up, the last error."""
        return self._statuses.read(actor)
