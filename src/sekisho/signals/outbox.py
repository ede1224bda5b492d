"""The SETs to push, as outbox rows: one per stream that asked for the event, written in the
transaction of the change they tell of (the grant's ending, the lock), so the change and its
signals commit together. The dispatcher signs and pushes them later; a receiver that is down
never slows an ending."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel
from sekisho.domain.timespec import iso
from sekisho.notify.message import Message
from sekisho.notify.outbox import row_values
from sekisho.signals import sets, streams
from sekisho.store import bulk
from sekisho.store.tables import NotificationRow

SESSION_REVOKED_EVENT = "ssf.session-revoked"  # the outbox rows' event
VERIFICATION_EVENT = "ssf.verification"


class SignalQueue:
    """The hooks the effects call. `public_url` is what each row's message links to."""

    def __init__(self, public_url: str) -> None:
        self._public_url = public_url

    def session_revoked(
        self,
        s: Session,
        model_of: Callable[[Session], AccessModel],
        user: str,
        at: datetime,
        reason: str,
        initiator: str,
    ) -> None:
        """Every session of `user` ended at `at`, for `reason`: each stream that asked hears.
        With no stream (the usual case) this costs one read per transaction, nothing more
        (the model is asked for only when a stream hears)."""
        hearing = streams.hearing(s, sets.SESSION_REVOKED)
        if not hearing:
            return
        person = model_of(s).user(user)
        subject = sets.user_subject(user, person.email if person else None)
        event = sets.session_revoked(at, reason, initiator)
        payload = _payload(sets.SESSION_REVOKED, event, subject)
        title = f"session-revoked: {user}"
        for stream_id, audience in hearing:
            self._append(s, SESSION_REVOKED_EVENT, stream_id, audience, title, payload, at)

    def verification(
        self, s: Session, stream_id: str, audience: str, state: str, at: datetime
    ) -> None:
        """SSF verification: the receiver asked to see that the stream delivers."""
        subject = {"format": "opaque", "id": stream_id}
        payload = _payload(sets.VERIFICATION, {"state": state} if state else {}, subject)
        title = f"verification of stream {stream_id}"
        self._append(s, VERIFICATION_EVENT, stream_id, audience, title, payload, at)

    def _append(
        self,
        s: Session,
        event: str,
        stream_id: str,
        audience: str,
        title: str,
        payload: dict[str, Any],
        at: datetime,
    ) -> None:
        message = Message(
            event=event,
            title=title,
            summary=title,
            link=self._public_url,
            occurred_at=iso(at),
            data={**payload, "aud": audience},
        )
        channel = streams.channel_name(stream_id)
        bulk.append(s, NotificationRow, row_values(event, channel, None, message, at))


def _payload(event_type: str, event: dict[str, Any], subject: dict[str, Any]) -> dict[str, Any]:
    return {"event_type": event_type, "event": event, "sub_id": subject}
