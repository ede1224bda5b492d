"""The outbox writer: a notice becomes rows to deliver, in the caller's transaction.

One row per channel the event is routed to; on a personal e-mail channel, one per address.
Written in the same transaction as the change the notice tells of, so the change and its
messages commit together or not at all. Nothing here calls the network: the dispatcher
delivers the rows later, so a channel that is down never slows or blocks the workflow.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel
from sekisho.notify.message import Message, Notice
from sekisho.notify.routing import addressed
from sekisho.store.tables import NotificationRow


def enqueue(s: Session, model: AccessModel, notice: Notice, now: datetime) -> None:
    """Write the notice's rows for every channel routed to its event."""
    order = order_key(notice)
    rows: list[dict[str, Any]] = []
    for channel in model.notifications.channels_for(notice.event, notice.template):
        if not channel.personal:
            rows.append(row_values(notice.event, channel.name, None, notice.broadcast, now, order))
            continue
        for address, message in addressed(model, notice).items():
            rows.append(row_values(notice.event, channel.name, address, message, now, order))
    if rows:
        # One executemany in the caller's transaction, past the ORM's unit of work: the
        # rows are never read back here, and this is on every filing's path.
        s.execute(insert(cast(Table, NotificationRow.__table__)), rows)


def order_key(notice: Notice) -> str | None:
    """Messages about one request and its grant reach each recipient in the order they were
    written (the dispatcher holds one back while an earlier one is pending): `request:ID`.
    Reports and test messages are about no one request: no order."""
    return f"request:{notice.request_id}" if notice.request_id is not None else None


def row_values(
    event: str,
    channel: str,
    recipient: str | None,
    message: Message,
    now: datetime,
    order: str | None = None,
) -> dict[str, Any]:
    """One outbox row, pending and due now; the message stored with the row's event."""
    event = str(event)
    if message.event != event:
        message = replace(message, event=event)
    return {
        "key": uuid.uuid4().hex,
        "event": event,
        "channel": channel,
        "recipient": recipient,
        "request_id": message.request_id,
        "grant_id": message.grant_id,
        "order_key": order,
        "message": message.to_json(),
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "next_at": now,
    }
