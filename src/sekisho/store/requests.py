"""Requests in the store: the row lock a decision takes, the one way a status changes, and
the decisions as the domain reads them (as `store.grants` is for grants)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sekisho.domain.errors import NotFound
from sekisho.domain.requests import (
    ApprovalDecision,
    RecordedDecision,
    RequestStatus,
    check_transition,
)
from sekisho.store.tables import DecisionRow, RequestRow


def lock(session: Session, request_id: int) -> RequestRow:
    """The request, locked until the transaction ends (a second decision waits, then sees
    the first); NotFound if there is none."""
    row = session.execute(
        select(RequestRow).where(RequestRow.id == request_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no request #{request_id}")
    return row


def move(row: RequestRow, new: RequestStatus, now: datetime) -> None:
    """Set `row`'s status to `new`, or raise Conflict if the state machine forbids it."""
    check_transition(RequestStatus(row.status), new)
    row.status, row.updated_at = new, now


def recorded(row: DecisionRow) -> RecordedDecision:
    return RecordedDecision(
        level=row.level,
        approver=row.approver,
        decision=ApprovalDecision(row.decision),
        comment=row.comment,
        at=row.decided_at,
    )
