"""Timeline entries: the request's story, step by step, as Change Manager shows it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from sekisho.store import bulk
from sekisho.store.tables import TimelineRow


def note(
    session: Session,
    request_id: int,
    at: datetime,
    kind: str,
    actor: str,
    message: str,
    status: str = "ok",
) -> None:
    row = {
        "request_id": request_id,
        "at": at,
        "kind": kind,
        "actor": actor,
        "status": status,
        "message": message[:4000],
    }
    bulk.append(session, TimelineRow, row)
