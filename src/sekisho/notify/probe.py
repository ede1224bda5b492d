"""`sekisho notify test`: a test message for one channel, queued whatever the routes say.

The CLI then delivers it at once and prints what the channel answered. On a personal e-mail
channel it goes to the addresses given, or else to every admin with an e-mail address.
"""

from __future__ import annotations

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel, Channel
from sekisho.domain.errors import NotFound
from sekisho.domain.text import check_email
from sekisho.notify.admin_notices import TEST_EVENT, channel_test_message
from sekisho.notify.outbox import row_values
from sekisho.notify.wording import Wording
from sekisho.ports import ModelSource
from sekisho.store.tables import NotificationRow
from sekisho.store.unit_of_work import Store


class QueueTestMessage:
    def __init__(self, store: Store, clock: Clock, models: ModelSource, public_url: str) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._public_url = public_url

    def execute(self, channel_name: str, to: list[str] | None = None) -> list[int]:
        """Queue the test message (ignoring routes); return the outbox ids."""
        given = [check_email("to", address) for address in to or []]
        now = self._clock.now()
        with self._store.write() as uow:
            s = uow.session
            model = self._models.model(s)
            channel = _channel(model, channel_name)
            message = channel_test_message(Wording(model, self._public_url, now), channel)
            addresses = _addresses(model, given) if channel.personal else [None]
            rows = [
                NotificationRow(**row_values(TEST_EVENT, channel.name, address, message, now))
                for address in addresses
            ]
            s.add_all(rows)
            s.flush()
            return [row.id for row in rows]


def _channel(model: AccessModel, name: str) -> Channel:
    channel = model.notifications.channel(name)
    if channel is None:
        known = ", ".join(c.name for c in model.notifications.channels) or "none"
        raise NotFound(f"no channel {name!r} in the model (channels: {known})")
    return channel


def _addresses(model: AccessModel, given: list[str]) -> list[str | None]:
    """Where a personal channel's test goes: the addresses given, or the admins'."""
    if given:
        return list(given)
    admins = (model.user(name) for name in model.admins())
    found: list[str | None] = [user.email for user in admins if user is not None and user.email]
    if not found:
        raise NotFound("nobody to mail: give --to ADDRESS (no admin has an e-mail)")
    return found
