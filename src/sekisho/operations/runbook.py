"""RunRunbook: what happens after the last approval (or at the start time).

A grant request adds the user to the work group and tags them with the end (the seed's two
steps); a remove request ends their grants early. Steps are idempotent and each lands on the
request's timeline. A failed step fails the request and is rolled back: no half-grant remains.
A runner holds the request for a lease, so a crashed run is resumed by the sweeper.

Claiming happens in the caller's unit of work (the approval that completes a request claims it
in its own transaction); running happens after that commit, because it calls the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import TemplateAction
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Conflict, InvalidInput
from sekisho.domain.events import (
    ExtensionRefused,
    GrantActivated,
    GrantExtended,
    RemovalFinished,
    RequestScheduled,
    RunbookFailed,
    RunbookStarted,
    RunbookStep,
    RunbookSucceeded,
    RunbookTooLate,
)
from sekisho.domain.extensions import check_extendable, check_whole_span
from sekisho.domain.grants import EndingGrant, EndReason, GrantStatus
from sekisho.domain.locks import Lock, lock_of_membership
from sekisho.domain.requests import RequestStatus
from sekisho.operations.grants import EndGrants
from sekisho.ports import ModelSource
from sekisho.services.membership import Membership, StepsOf, gather_steps
from sekisho.store import grants, locks, requests
from sekisho.store.tables import GrantRow, RequestRow
from sekisho.store.unit_of_work import Store, UnitOfWork

RUNNER = Actor.system("runbook")
UNDOING = "the runbook failed; undoing its steps"


@dataclass(frozen=True)
class Job:
    request_id: int
    action: TemplateAction
    user: str
    group: str
    grant_id: int | None
    rollback: bool = False  # undo whatever an interrupted run did; the request fails
    # An extension that took effect: the provider's TTL tag follows the grant's new end. Its
    # steps show on this request (the extension) and on the grant's own, `retag_for`.
    retag_for: int | None = None


class RunRunbook:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        membership: Membership,
        end: EndGrants,
        lease: timedelta,  # how long a runner holds a request before another may take over
    ) -> None:
        self._store, self._clock, self._models, self._membership = store, clock, models, membership
        self._end, self._lease = end, lease

    def execute(self, request_id: int) -> bool:
        """Run (or resume) the request's runbook if it is due and free. True if it ran."""
        with self._store.write() as uow:
            row = uow.session.execute(
                select(RequestRow).where(RequestRow.id == request_id).with_for_update()
            ).scalar_one()
            job = self.claim(uow, row)
        if job is None:
            return False
        self.run(job)
        return True

    # -- claiming, in the caller's unit of work --------------------------------------------

    def claim(self, uow: UnitOfWork, row: RequestRow) -> Job | None:
        """Take a locked request for running, in the caller's transaction, if it is due.

        The approval that completes a request claims it in the same transaction, so the
        scheduler never sees it approved-but-unclaimed and never races the approver for it.
        None: nothing to run now (scheduled for later, held by another runner, or final).
        """
        now = self._clock.now()
        status = RequestStatus(row.status)
        resumable = status is RequestStatus.IN_PROGRESS and (
            row.runner_until is None or row.runner_until <= now
        )
        if not (status in (RequestStatus.APPROVED, RequestStatus.SCHEDULED) or resumable):
            return None
        if row.extends_grant_id is not None:
            return self._extend(uow, row, row.extends_grant_id, now)
        if TemplateAction(row.action) is TemplateAction.REMOVE:
            return self._take(uow, row, None, resumable, now)
        if row.start_at and row.start_at > now:
            if status is not RequestStatus.SCHEDULED:
                requests.move(row, RequestStatus.SCHEDULED, now)
                uow.record(RequestScheduled(now, row.id))
            return None
        existing = grants.of_request(uow.session, row.id)
        too_late = row.end_at is not None and row.end_at <= now
        if existing is not None and (
            too_late or existing.status in (GrantStatus.ENDING, GrantStatus.FAILED)
        ):
            return self._undo_interrupted(uow, row, existing, now)
        if too_late:
            requests.move(row, RequestStatus.FAILED, now)
            uow.record(RunbookTooLate(now, row.id))
            return None
        grant = existing or self._new_grant(uow.session, row, now)
        return self._take(uow, row, grant.id, resumable, now)

    def _take(
        self, uow: UnitOfWork, row: RequestRow, grant_id: int | None, resumed: bool, now: datetime
    ) -> Job:
        requests.move(row, RequestStatus.IN_PROGRESS, now)
        row.runner_until = now + self._lease
        uow.record(RunbookStarted(now, row.id, resumed))
        action = TemplateAction(row.action)
        return Job(row.id, action, row.subject, row.group_name, grant_id)

    def _undo_interrupted(
        self, uow: UnitOfWork, row: RequestRow, grant: GrantRow, now: datetime
    ) -> Job:
        """An interrupted run may have changed the provider: undo it, then fail."""
        if grant.status == GrantStatus.ACTIVATING:
            # Never usable; handed to the one way grants end. The run that follows finishes
            # the undo; if it dies too, the sweeper retries the ending after the lease.
            self._end.start(uow, [grant.id], EndReason.FAILED, RUNNER, UNDOING, lease=self._lease)
        row.runner_until = now + self._lease
        return Job(row.id, TemplateAction.GRANT, row.subject, row.group_name, grant.id, True)

    def _extend(self, uow: UnitOfWork, row: RequestRow, grant_id: int, now: datetime) -> Job | None:
        """An approved extension moves its grant's end here, in the approval's transaction,
        with the grant locked: access holds from the old end to the new one without a gap.
        A grant that ended first (or a template whose maximum no longer allows the new end)
        fails the extension and is left exactly as it was."""
        grant = grants.lock(uow.session, grant_id)
        assert grant is not None  # a request names a grant only once it exists
        assert row.end_at is not None  # an extension is filed with its new end
        template = self._models.model(uow.session).template(row.template)
        try:
            check_extendable(grants.window(grant), now)
            if template is None:
                raise Conflict(f"template {row.template} is no longer in the access model")
            check_whole_span(template, grants.window(grant), row.end_at, "until")
        except (Conflict, InvalidInput) as refused:
            requests.move(row, RequestStatus.FAILED, now)
            uow.record(ExtensionRefused(now, row.id, grant.id, refused.message))
            return None
        old_end, grant.end_at = grant.end_at, row.end_at
        requests.move(row, RequestStatus.SUCCEEDED, now)
        uow.record(GrantExtended(now, grant.id, row.id, old_end, row.end_at, RUNNER))
        action = TemplateAction.GRANT
        return Job(
            row.id, action, grant.user, grant.group_name, grant.id, retag_for=grant.request_id
        )

    @staticmethod
    def _new_grant(s: Session, row: RequestRow, now: datetime) -> GrantRow:
        start = max(row.start_at or now, now)
        if row.end_at is None:  # a duration: it counts from now, the activation
            assert row.duration_s is not None
            row.end_at = start + timedelta(seconds=row.duration_s)
        return grants.add(s, row.id, row.subject, row.group_name, start, row.end_at, now)

    # -- running, after the claim committed --------------------------------------------------

    def run(self, job: Job) -> RequestStatus:
        """Run a claimed job's steps. The claim (its lease) keeps other runners away."""
        if job.retag_for is not None:
            return self._retag(job)
        if job.action is TemplateAction.GRANT:
            return self._grant(job)
        return self._remove(job)

    def _retag(self, job: Job) -> RequestStatus:
        """After an extension: the provider is brought in line with the grant's new end
        (the membership stays; the TTL tag is written again). The extension is in force
        already; a tag the provider did not confirm shows as a failed step, and the
        reconciler rewrites it (sekisho's own decisions never read the tag)."""
        assert job.retag_for is not None
        steps: list[RunbookStep] = []
        on_step = gather_steps(self._clock, steps, (job.request_id, job.retag_for), RUNNER)

        def record(uow: UnitOfWork, _confirmed: dict[tuple[str, str], bool]) -> RequestStatus:
            uow.record(*steps)
            return RequestStatus.SUCCEEDED

        return self._membership.follow([(job.user, job.group)], lambda _pair: on_step, record)

    def _grant(self, job: Job) -> RequestStatus:
        if job.rollback:
            return self._fail(job, "the run was interrupted or came too late", self._undo(job))
        steps: list[RunbookStep] = []
        locked: list[str] = []

        def record(
            uow: UnitOfWork, confirmed: dict[tuple[str, str], bool]
        ) -> list[EndingGrant] | None:
            """None: activated. Otherwise the endings that undo the run."""
            uow.record(*steps)  # the run's steps land on the timeline with its outcome
            lock = self._lock_on(uow.session, job)  # placed while the run was under way
            if confirmed[(job.user, job.group)] and lock is None:
                self._activate(uow, job)
                return None
            locked.extend([lock.message] if lock else [])
            # This grant no longer counts, so undoing it removes what the run added (or keeps
            # the membership an overlapping grant still needs).
            return self._start_undo(uow, job)

        pair = (job.user, job.group)
        endings = self._membership.follow([pair], self._recorder(job, steps), record)
        if endings is None:
            return RequestStatus.SUCCEEDED
        failed = [s for s in steps if not s.ok]
        error = f"{failed[0].step}: {failed[0].output}" if failed else "step failed"
        error = locked[0] if locked else error
        rolled_back = not self._end.finish(endings, RUNNER).pending
        return self._fail(job, error, rolled_back)

    def _recorder(self, job: Job, steps: list[RunbookStep]) -> StepsOf:
        """Gather the run's steps, to be recorded with the run's outcome."""
        record = gather_steps(self._clock, steps, (job.request_id,), RUNNER)
        return lambda _pair: record

    def _lock_on(self, s: Session, job: Job) -> Lock | None:
        """A lock in force on the grant's user or group: it must not become usable."""
        model = self._models.model(s)
        return lock_of_membership(locks.in_force(s, self._clock.now()), model, job.user, job.group)

    def _activate(self, uow: UnitOfWork, job: Job) -> None:
        assert job.grant_id is not None
        now = self._clock.now()
        grant = uow.session.get_one(GrantRow, job.grant_id)
        row = uow.session.get_one(RequestRow, job.request_id)
        grants.activate(grant, now)
        requests.move(row, RequestStatus.SUCCEEDED, now)
        row.runner_until = None
        uow.record(GrantActivated(now, grant.id, RUNNER), RunbookSucceeded(now, row.id, grant.id))

    def _start_undo(self, uow: UnitOfWork, job: Job) -> list[EndingGrant]:
        assert job.grant_id is not None
        # Activating (the run's own) or ending (an undo already under way): both undo.
        return self._end.start(uow, [job.grant_id], EndReason.FAILED, RUNNER, UNDOING)

    def _undo(self, job: Job) -> bool:
        """Roll back through the one way grants end; True once the provider confirmed.

        Unconfirmed, the grant stays `ending` and the sweeper retries it with backoff, so a
        membership added by a failed run never stays behind.
        """
        assert job.grant_id is not None
        note = f"request #{job.request_id} failed"
        return not self._end.execute([job.grant_id], EndReason.FAILED, RUNNER, note=note).pending

    def _fail(self, job: Job, error: str, rolled_back: bool) -> RequestStatus:
        now = self._clock.now()
        with self._store.write() as uow:
            row = uow.session.get_one(RequestRow, job.request_id)
            requests.move(row, RequestStatus.FAILED, now)
            row.runner_until = None
            uow.record(RunbookFailed(now, row.id, error, rolled_back))
        return RequestStatus.FAILED

    def _remove(self, job: Job) -> RequestStatus:
        with self._store.read() as s:
            grant_ids = grants.endable_ids(s, job.user, job.group)
        note = f"removed by request #{job.request_id}"
        result = self._end.execute(
            grant_ids, EndReason.REMOVED, RUNNER, note=note, also_on=job.request_id
        )
        now = self._clock.now()
        done = not result.pending
        with self._store.write() as uow:
            row = uow.session.get_one(RequestRow, job.request_id)
            requests.move(row, RequestStatus.SUCCEEDED if done else RequestStatus.FAILED, now)
            row.runner_until = None
            uow.record(RemovalFinished(now, row.id, done, len(result.ended)))
        return RequestStatus.SUCCEEDED if done else RequestStatus.FAILED
