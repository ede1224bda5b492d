"""The push streams receivers registered, as the store keeps them, and the one lookup the
effects make: which streams hear of an event type (read once per transaction)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sekisho.store.tables import SsfStreamRow

CHANNEL_PREFIX = "ssf:"  # an outbox row's channel for a stream: ssf:<stream_id>
_CACHE = "sekisho.ssf_streams"  # session.info: the streams, read once per transaction


def channel_name(stream_id: str) -> str:
    return CHANNEL_PREFIX + stream_id


def stream_of_channel(name: str) -> str | None:
    return name[len(CHANNEL_PREFIX) :] if name.startswith(CHANNEL_PREFIX) else None


def stream(s: Session, stream_id: str) -> SsfStreamRow | None:
    return s.get(SsfStreamRow, stream_id)


def listed(s: Session) -> list[SsfStreamRow]:
    return list(s.scalars(select(SsfStreamRow).order_by(SsfStreamRow.created_at)))


def remove(s: Session, stream_id: str) -> bool:
    done = s.execute(delete(SsfStreamRow).where(SsfStreamRow.stream_id == stream_id))
    return bool(getattr(done, "rowcount", 0))


def hearing(s: Session, event_type: str) -> list[tuple[str, str]]:
    """(stream id, audience) of every stream that asked for `event_type`. A sweep ending
    10,000 grants asks 10,000 times in one transaction: the streams are read once."""
    cached: list[tuple[str, str, tuple[str, ...]]] | None = s.info.get(_CACHE)
    if cached is None:
        rows = s.execute(
            select(SsfStreamRow.stream_id, SsfStreamRow.audience, SsfStreamRow.events_requested)
        )
        cached = s.info[_CACHE] = [(i, a, tuple(e)) for i, a, e in rows]
    return [(i, a) for i, a, events in cached if event_type in events]
