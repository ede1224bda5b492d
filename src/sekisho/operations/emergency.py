"""After an emergency: ReviewEmergency (an approver's post-incident review) and
ReportOverdueReviews (the sweep's step that reports reviews past due, until they are done)."""

from __future__ import annotations

from sqlalchemy import func, select

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.domain.emergency import OVERDUE_REPEAT, check_review
from sekisho.domain.errors import InvalidInput, Locked, NotFound
from sekisho.domain.events import EmergencyReviewed, EmergencyReviewsOverdue
from sekisho.domain.locks import lock_of_user
from sekisho.domain.text import LONG_TEXT, check_text
from sekisho.ports import ModelSource
from sekisho.services import permissions
from sekisho.store import locks, requests
from sekisho.store.tables import RequestRow
from sekisho.store.unit_of_work import Store

BATCH = 500  # overdue reviews reported in one transaction


class ReviewEmergency:
    """An approver of the template marks an emergency use reviewed, once, with a comment."""

    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def execute(self, actor: Actor, request_id: int, comment: str) -> None:
        comment = check_text("comment", comment or "", max_length=LONG_TEXT, multiline=True)
        if not comment:
            raise InvalidInput.one("comment", "required", "say what the review found")
        with self._store.write() as uow:
            model = self._models.model(uow.session)
            row = requests.lock(uow.session, request_id)
            if not permissions.may_view_request(model, actor, row):
                raise NotFound(f"no request #{request_id}")
            now = self._clock.now()
            reviewer_lock = lock_of_user(locks.in_force(uow.session, now), actor.name)
            if reviewer_lock is not None:
                raise Locked(reviewer_lock.message)
            check_review(
                request_id=row.id,
                emergency=row.emergency,
                template=model.template(row.template),
                template_name=row.template,
                requester=row.requester,
                subject=row.subject,
                reviewed_by=row.reviewed_by,
                reviewed_at=row.reviewed_at,
                reviewer=actor.name,
                reviewer_groups=frozenset(g.name for g in model.standing_groups_of(actor.name)),
            )
            row.reviewed_at, row.reviewed_by, row.review_comment = now, actor.name, comment
            row.review_next_at = None  # done: the sweep reports it no more
            uow.record(EmergencyReviewed(now, row.id, actor, comment))


# The earliest overdue report to send: one of the sweep's deadlines too.
NEXT_OVERDUE = select(func.min(RequestRow.review_next_at)).scalar_subquery()


class ReportOverdueReviews:
    """The sweep's step: every emergency whose review is past due and not done is reported,
    then again each OVERDUE_REPEAT until someone reviews it."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self, limit: int = BATCH) -> list[int]:
        """Return the requests whose overdue reviews were reported."""
        now = self._clock.now()
        with self._store.read() as s:
            first = s.scalar(select(NEXT_OVERDUE))
        if first is None or first > now:
            return []  # the common case: no write transaction at all
        with self._store.write() as uow:
            due = list(
                uow.session.scalars(
                    select(RequestRow)
                    .where(RequestRow.review_next_at <= now)
                    .order_by(RequestRow.review_next_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)  # another node's sweep skips them
                )
            )
            for row in due:
                row.review_next_at = now + OVERDUE_REPEAT
            reported = tuple(row.id for row in due)
            if reported:
                uow.record(EmergencyReviewsOverdue(now, reported))
        return list(reported)
