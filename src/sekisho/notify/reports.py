"""Reports to the admins: lines written with each ending they tell of, gathered into one message.

The expiry sweep's and the reconciler's reports are built from report lines, written in the
transaction of the ending (or the fix) they report. `ComposeReports` then gathers every line
no report has taken into one report per source, so a crash between an ending and its report
loses no line, and a mass expiry sends one report, not one per grant. Lines a pass left
behind (it died) are the dispatcher's to gather once they are `ORPHAN_AFTER` old.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import NotifyEvent
from sekisho.domain.actor import Actor
from sekisho.domain.events import ReportComposed
from sekisho.domain.grants import EndingGrant
from sekisho.domain.timespec import iso
from sekisho.store.tables import ReportLineRow
from sekisho.store.unit_of_work import Store

SCHEDULER = Actor.system("scheduler")
ORPHAN_AFTER = timedelta(minutes=1)  # lines a pass did not gather (it died): the dispatcher's
GATHER_AT_ONCE = 5000

# Report-line outcomes, and the two sources of reports
ENDED, RECOVERED, FAILED, FIXED = "ended", "recovered", "failed", "fixed"
EXPIRY, RECONCILE = "expiry", "reconcile"
SOURCES = (EXPIRY, RECONCILE)


def report_event(source: str) -> NotifyEvent:
    return NotifyEvent.EXPIRY_REPORT if source == EXPIRY else NotifyEvent.RECONCILE_REPORT


def report_worthy(attempts: int) -> bool:
    """A failing ending is reported at its 1st, 4th, 16th, 64th... attempt: seen at once,
    then less and less often while it keeps failing (retries back off to every few minutes)."""
    while attempts > 1 and attempts % 4 == 0:
        attempts //= 4
    return attempts == 1


def ending_line(grant: EndingGrant, actor: Actor, confirmed: bool) -> tuple[str, str] | None:
    """The expiry report's line (outcome, detail) for an ending the provider answered for:
    what the sweep ended, a removal confirmed after failures, a failure worth reporting."""
    if confirmed and grant.attempts:
        return RECOVERED, f"removed after {grant.attempts + 1} attempts ({grant.status})"
    if confirmed and actor == SCHEDULER:
        return ENDED, f"{grant.status} at {iso(grant.end_at)}"
    if not confirmed and report_worthy(grant.attempts):
        return FAILED, f"attempt {grant.attempts}: {grant.last_error or 'no answer'}"
    return None  # an early end the provider confirmed at once: no report's business


def add_line(
    s: Session,
    at: datetime,
    *,
    source: str,
    outcome: str,
    user: str,
    group: str,
    detail: str,
    grant_id: int | None,
    request_id: int | None,
) -> None:
    """One line of the next report, in the caller's transaction."""
    s.add(
        ReportLineRow(
            source=source,
            outcome=outcome,
            user=user,
            group_name=group,
            grant_id=grant_id,
            request_id=request_id,
            detail=detail[:2000],
            at=at,
        )
    )


def lines_of(s: Session, report_key: str) -> list[ReportLineRow]:
    """The lines one report gathered, in the order they were written."""
    return list(
        s.scalars(
            select(ReportLineRow)
            .where(ReportLineRow.report_key == report_key)
            .order_by(ReportLineRow.id)
        )
    )


# The oldest report line no pass gathered, as a column a caller selects beside its own.
OLDEST_ORPHAN = (
    select(func.min(ReportLineRow.at)).where(ReportLineRow.report_key.is_(None))
).scalar_subquery()


def orphans_due(oldest: datetime | None) -> datetime | None:
    """When lines no pass gathered (it died), the oldest at `oldest`, are the dispatcher's."""
    return oldest + ORPHAN_AFTER if oldest is not None else None


def next_orphan(s: Session) -> datetime | None:
    """When report lines no pass gathered (it died) are the dispatcher's to gather."""
    return orphans_due(s.scalar(select(OLDEST_ORPHAN)))


class ComposeReports:
    """Gather the lines no report has taken into one report per source; the lines and the
    report's messages commit together."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self, older_than: timedelta = timedelta(0)) -> int:
        """Return how many reports were written."""
        now = self._clock.now()
        until = now - older_than
        with self._store.read() as s:
            if _first_ungathered(s, until) is None:
                return 0  # the common case: no write transaction at all
        written = 0
        with self._store.write() as uow:
            lines = _take_ungathered(uow.session, until)
            for source in SOURCES:
                mine = [line for line in lines if line.source == source]
                if mine:
                    key = uuid.uuid4().hex
                    for line in mine:
                        line.report_key = key
                    uow.record(ReportComposed(now, source, key))
                    written += 1
        return written


def _first_ungathered(s: Session, until: datetime) -> int | None:
    first: int | None = s.scalar(
        select(ReportLineRow.id)
        .where(ReportLineRow.report_key.is_(None), ReportLineRow.at <= until)
        .limit(1)
    )
    return first


def _take_ungathered(s: Session, until: datetime) -> list[ReportLineRow]:
    """The lines no report took, locked: another pass gathering at once skips them."""
    return list(
        s.scalars(
            select(ReportLineRow)
            .where(ReportLineRow.report_key.is_(None), ReportLineRow.at <= until)
            .order_by(ReportLineRow.id)
            .limit(GATHER_AT_ONCE)
            .with_for_update(skip_locked=True)
        )
    )
