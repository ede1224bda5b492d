"""Each channel's state, for admins: `sekisho notify status` and `GET /notifications/status`.

Per channel: messages pending (and of those, failing), delivered, given up, the last error,
and what in its configuration keeps it from sending (a variable not set, a CA file missing).
A channel no longer in the model is listed while it has rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel, Channel
from sekisho.domain.actor import Actor
from sekisho.notify.channels import config_problems
from sekisho.ports import ModelSource
from sekisho.services import permissions
from sekisho.store.db import Database
from sekisho.store.tables import NotificationRow


@dataclass(frozen=True)
class ChannelStatus:
    name: str
    type: str | None  # None: no longer in the model
    pending: int  # not yet delivered (including failing)
    failing: int  # pending, and failed at least once
    delivered: int
    failed: int  # given up
    last_error: str | None
    last_error_at: datetime | None
    last_delivered_at: datetime | None
    oldest_pending_at: datetime | None
    problems: tuple[str, ...] = ()  # configuration: a variable not set, a CA file missing

    @property
    def healthy(self) -> bool:
        return not (self.failing or self.failed or self.problems)


@dataclass(frozen=True)
class _Group:
    """The rows of one channel in one status, tried (a last error) or not."""

    channel: str
    status: str
    tried: bool
    count: int
    last_delivered_at: datetime | None
    oldest_created_at: datetime | None


LastError = tuple[str | None, datetime | None] | None  # the newest error and its time


class ChannelStatuses:
    def __init__(
        self,
        db: Database,
        models: ModelSource,
        channel_of: Callable[[AccessModel, str], Channel | None] | None = None,
    ) -> None:
        self._db, self._models = db, models
        self._channel_of = channel_of or (lambda model, name: model.notifications.channel(name))

    def read(self, actor: Actor) -> list[ChannelStatus]:
        """Every channel of the model, then any other that still has rows."""
        with self._db.read() as s:
            model = self._models.model(s)
            permissions.require_admin(model, actor, "see the notification channels")
            counts = _counts(s)
            names = [c.name for c in model.notifications.channels]
            names += sorted({g.channel for g in counts} - set(names))
            return [
                _status(
                    name,
                    [g for g in counts if g.channel == name],
                    _last_error(s, name),
                    self._channel_of(model, name),
                )
                for name in names
            ]


def _counts(s: Session) -> list[_Group]:
    tried = NotificationRow.last_error.is_not(None)
    rows = s.execute(
        select(
            NotificationRow.channel,
            NotificationRow.status,
            tried,
            func.count(),
            func.max(NotificationRow.delivered_at),
            func.min(NotificationRow.created_at),
        ).group_by(NotificationRow.channel, NotificationRow.status, tried)
    )
    return [_Group(*row) for row in rows]


def _last_error(s: Session, name: str) -> LastError:
    row = s.execute(
        select(NotificationRow.last_error, NotificationRow.last_error_at)
        .where(NotificationRow.channel == name, NotificationRow.last_error_at.is_not(None))
        .order_by(NotificationRow.last_error_at.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def _status(
    name: str, mine: list[_Group], last: LastError, channel: Channel | None
) -> ChannelStatus:
    pending = [g for g in mine if g.status == "pending"]
    delivered = [g for g in mine if g.status == "delivered"]
    delivered_at = [g.last_delivered_at for g in delivered if g.last_delivered_at]
    oldest = [g.oldest_created_at for g in pending if g.oldest_created_at]
    return ChannelStatus(
        name=name,
        type=channel.type.value if channel else None,
        pending=sum(g.count for g in pending),
        failing=sum(g.count for g in pending if g.tried),
        delivered=sum(g.count for g in delivered),
        failed=sum(g.count for g in mine if g.status == "failed"),
        last_error=last[0] if last else None,
        last_error_at=last[1] if last else None,
        last_delivered_at=max(delivered_at) if delivered_at else None,
        oldest_pending_at=min(oldest) if oldest else None,
        problems=_problems(channel),
    )


def _problems(channel: Channel | None) -> tuple[str, ...]:
    if channel is None:
        return ("not in the model any more",)
    return tuple(config_problems(channel))
