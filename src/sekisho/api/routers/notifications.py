"""The notification channels' state, for admins (what `sekisho notify status` prints)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from sekisho.api.deps import ActorDep, CoreDep
from sekisho.api.problems import responses

router = APIRouter(
    prefix="/notifications", tags=["notifications"], responses=responses(401, 403, 503)
)


class ChannelStatusOut(BaseModel):
    channel: str
    type: str | None  # None: the channel is no longer in the model
    healthy: bool
    pending: int
    failing: int
    delivered: int
    failed: int
    last_error: str | None
    last_error_at: datetime | None
    last_delivered_at: datetime | None
    oldest_pending_at: datetime | None
    problems: list[str]


@router.get("/status", response_model=list[ChannelStatusOut])
def channel_status(core: CoreDep, actor: ActorDep) -> list[ChannelStatusOut]:
    """Per channel: messages pending, failing, delivered, given up, and the last error."""
    return [
        ChannelStatusOut(
            channel=c.name,
            type=c.type,
            healthy=c.healthy,
            pending=c.pending,
            failing=c.failing,
            delivered=c.delivered,
            failed=c.failed,
            last_error=c.last_error,
            last_error_at=c.last_error_at,
            last_delivered_at=c.last_delivered_at,
            oldest_pending_at=c.oldest_pending_at,
            problems=list(c.problems),
        )
        for c in core.outbox.status(actor)
    ]
