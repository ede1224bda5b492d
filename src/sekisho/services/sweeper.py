"""One pass over everything whose time has come, and when the next thing is due.

Ends grants at their end (first, before anything else), retries endings the provider has not
confirmed, expires requests nobody decided, starts scheduled runbooks, resumes runbooks
whose runner vanished, writes the reminders of grants about to end, and sends one report of
what the pass ended or failed to end. `sekisho sweep` runs one pass; the scheduler in
`sekisho serve` runs a pass at every deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ScalarSelect, exists, func, select
from sqlalchemy.orm import InstrumentedAttribute

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.domain.grants import EndReason
from sekisho.domain.requests import RequestStatus
from sekisho.operations.emergency import NEXT_OVERDUE, ReportOverdueReviews
from sekisho.operations.grants import EndGrants
from sekisho.operations.requests import ExpireUndecided
from sekisho.operations.runbook import RunRunbook
from sekisho.ports import ModelSource, NotifyJobs
from sekisho.store import grants
from sekisho.store.tables import RequestRow
from sekisho.store.unit_of_work import Store

SWEEPER = Actor.system("scheduler")
# Grants a batch ends (of each kind: due, and retries due). Each batch is two write
# transactions whatever its size; on SQLite the second holds the writer for a few tenths of
# a second at 2,000.
_BATCH = 2000


@dataclass
class SweepReport:
    expired: list[int] = field(default_factory=list)  # grants ended at their end
    retried: list[int] = field(default_factory=list)  # endings confirmed on a retry
    still_failing: dict[int, str] = field(default_factory=dict)  # grant -> provider error
    requests_expired: list[int] = field(default_factory=list)
    runbooks_run: list[int] = field(default_factory=list)
    reminded: list[int] = field(default_factory=list)  # grants whose end is near: told
    reviews_overdue: list[int] = field(default_factory=list)  # emergencies not reviewed
    reports: int = 0  # notification reports written (what ended, what failed to)

    @property
    def anything(self) -> bool:
        return bool(
            self.expired
            or self.retried
            or self.still_failing
            or self.requests_expired
            or self.runbooks_run
            or self.reminded
            or self.reviews_overdue
        )


class Sweeper:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        end: EndGrants,
        expire_undecided: ExpireUndecided,
        runbook: RunRunbook,
        notify: NotifyJobs,
        models: ModelSource,
        overdue_reviews: ReportOverdueReviews,
    ) -> None:
        self._store, self._clock, self._end = store, clock, end
        self._expire_undecided, self._runbook, self._notify = expire_undecided, runbook, notify
        self._models, self._overdue_reviews = models, overdue_reviews

    def run_due(self) -> SweepReport:
        """One pass, under one version of the model (asked of the store once)."""
        with self._models.one_version():
            return self._pass()

    def _pass(self) -> SweepReport:
        report = SweepReport()
        self._end_grants(report)
        self._expire_requests(report)
        self._run_runbooks(report)
        report.reminded = self._notify.send_reminders()
        report.reviews_overdue = self._overdue_reviews.execute()
        # One report for the whole pass: what it ended, and what the provider did not confirm.
        report.reports = self._notify.compose_reports()
        return report

    def _end_grants(self, report: SweepReport) -> None:
        """End what is due, a batch at a time: each batch costs two write transactions (its
        endings start in one, the provider's answers land in the other), whatever its size."""
        while True:
            with self._store.read() as s:
                due = grants.due(s, self._clock.now(), _BATCH)
            if not due.expiring and not due.retries:
                return
            result = self._end.execute([*due.expiring, *due.retries], EndReason.EXPIRED, SWEEPER)
            expiring = set(due.expiring)
            report.expired += [g for g in result.ended if g in expiring]
            report.retried += [g for g in result.ended if g not in expiring]
            report.still_failing.update(result.errors)
            if len(due.expiring) < _BATCH and len(due.retries) < _BATCH:
                return

    def _expire_requests(self, report: SweepReport) -> None:
        with self._store.read() as s:
            due = list(
                s.scalars(
                    select(RequestRow.id).where(
                        RequestRow.status == RequestStatus.PENDING_APPROVAL,
                        RequestRow.decide_by <= self._clock.now(),
                    )
                )
            )
        report.requests_expired += [r for r in due if self._expire_undecided.execute(r)]

    def _run_runbooks(self, report: SweepReport) -> None:
        now = self._clock.now()
        with self._store.read() as s:
            due = list(
                s.scalars(
                    select(RequestRow.id)
                    .where(
                        (RequestRow.status == RequestStatus.APPROVED)
                        | (
                            (RequestRow.status == RequestStatus.SCHEDULED)
                            & (RequestRow.start_at <= now)
                        )
                        | (
                            (RequestRow.status == RequestStatus.IN_PROGRESS)
                            & (RequestRow.runner_until <= now)
                        )
                    )
                    .order_by(RequestRow.id)
                )
            )
        report.runbooks_run += [r for r in due if self._runbook.execute(r)]

    def next_deadline(self) -> datetime | None:
        """The earliest instant at which a pass would find something to do."""
        with self._store.read() as s:
            row = s.execute(_DEADLINES).one()
            candidates = [*row[:-1], self._notify.next_reminder(s)]  # a coming-end reminder
        if row.approved:  # approved and not yet claimed: run it now
            candidates.append(self._clock.now())
        found = [_aware(c) for c in candidates if c is not None]
        return min(found) if found else None


def _earliest(column: InstrumentedAttribute[Any], status: RequestStatus) -> ScalarSelect[Any]:
    return select(func.min(column)).where(RequestRow.status == status).scalar_subquery()


# Every deadline of the grants and requests in one statement: a loop woken by each event
# asks this, so one round trip and a statement built once, not seven.
_DEADLINES = select(
    grants.NEXT_END,
    grants.NEXT_RETRY,
    _earliest(RequestRow.decide_by, RequestStatus.PENDING_APPROVAL),
    _earliest(RequestRow.start_at, RequestStatus.SCHEDULED),
    _earliest(RequestRow.runner_until, RequestStatus.IN_PROGRESS),
    NEXT_OVERDUE,  # an emergency's review past due, reported until it is done
    exists().where(RequestRow.status == RequestStatus.APPROVED).label("approved"),
)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
