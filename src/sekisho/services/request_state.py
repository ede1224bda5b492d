"""The one way a stored request changes status: checked against the domain's state machine."""

from __future__ import annotations

from datetime import datetime

from sekisho.domain.requests import RequestStatus, check_transition
from sekisho.store.tables import RequestRow


def move(row: RequestRow, new: RequestStatus, now: datetime) -> None:
    """Set `row`'s status to `new`, or raise Conflict if the state machine forbids it."""
    check_transition(RequestStatus(row.status), new)
    row.status, row.updated_at = new, now
