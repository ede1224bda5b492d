"""The runbook: what happens after the last approval (or at the start time).

A grant request adds the user to the work group and tags them with the end (the seed's two
steps); a remove request ends their grants early. Steps are idempotent and each lands on the
request's timeline. A failed step fails the request and is rolled back: no half-grant remains.
A runner holds the request for a lease, so a crashed run is resumed by the sweeper.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from sekisho.domain.access import TemplateAction
from sekisho.domain.actor import Actor
from sekisho.domain.grants import EndReason, GrantStatus, check_ending
from sekisho.domain.requests import RequestStatus
from sekisho.domain.timespec import iso
from sekisho.services import membership, timeline
from sekisho.services.audit import AuditEvent
from sekisho.services.membership import StepOutcome
from sekisho.services.request_state import move
from sekisho.store import grants
from sekisho.store.tables import GrantRow, RequestRow

if TYPE_CHECKING:
    from sekisho.services.core import Core

RUNNER = Actor.system("runbook")


@dataclass(frozen=True)
class Job:
    request_id: int
    action: TemplateAction
    user: str
    group: str
    grant_id: int | None
    rollback: bool = False  # undo whatever an interrupted run did; the request fails


class RunbookService:
    def __init__(self, core: Core) -> None:
        self._core = core

    def execute(self, request_id: int) -> bool:
        """Run (or resume) the request's runbook if it is due and free. True if it ran."""
        with self._core.db.write() as s:
            row = s.execute(
                select(RequestRow).where(RequestRow.id == request_id).with_for_update()
            ).scalar_one()
            job = self.claim(s, row)
        if job is None:
            return False
        self.run(job)
        return True

    def run(self, job: Job) -> None:
        """Run a claimed job's steps. The claim (its lease) keeps other runners away."""
        if job.action is TemplateAction.GRANT:
            self._grant(job)
        else:
            self._remove(job)

    def claim(self, s: Session, row: RequestRow) -> Job | None:
        """Take a locked request for running, in the caller's transaction, if it is due.

        The approval that completes a request claims it in the same transaction, so the
        scheduler never sees it approved-but-unclaimed and never races the approver for it.
        None: nothing to run now (scheduled for later, held by another runner, or final).
        """
        core = self._core
        now = core.now()
        status = RequestStatus(row.status)
        runnable = status in (RequestStatus.APPROVED, RequestStatus.SCHEDULED)
        resumable = status is RequestStatus.IN_PROGRESS and (
            row.runner_until is None or row.runner_until <= now
        )
        if not (runnable or resumable):
            return None
        action = TemplateAction(row.action)
        if action is TemplateAction.GRANT and row.start_at and row.start_at > now:
            if status is not RequestStatus.SCHEDULED:
                move(row, RequestStatus.SCHEDULED, now)
                timeline.note(
                    s,
                    row.id,
                    now,
                    "scheduled",
                    RUNNER.name,
                    f"runbook will run at {iso(row.start_at)}",
                )
            return None
        existing = s.scalar(select(GrantRow).where(GrantRow.request_id == row.id))
        too_late = row.end_at is not None and row.end_at <= now
        if (
            action is TemplateAction.GRANT
            and existing is not None
            and (too_late or existing.status in (GrantStatus.ENDING, GrantStatus.FAILED))
        ):
            # An interrupted run may have changed the provider: undo it, then fail.
            _mark_undo(existing, now + core.settings.runbook_lease)
            row.runner_until = now + core.settings.runbook_lease
            return Job(row.id, action, row.subject, row.group_name, existing.id, rollback=True)
        if action is TemplateAction.GRANT and too_late:
            move(row, RequestStatus.FAILED, now)
            timeline.note(
                s,
                row.id,
                now,
                "failed",
                RUNNER.name,
                "the end time passed before the runbook could run",
                status="failed",
            )
            core.audit(s, _request_event("request.failed", row, error="end passed"))
            core.outbox.runbook_finished(
                s, row, ok=False, detail="the end time passed before the runbook could run"
            )
            return None
        move(row, RequestStatus.IN_PROGRESS, now)
        row.runner_until = now + core.settings.runbook_lease
        grant_id = None
        if action is TemplateAction.GRANT:
            grant_id = self._grant_row(s, row, now).id
        verb = "resumed" if resumable else "started"
        timeline.note(s, row.id, now, "runbook", RUNNER.name, f"runbook {verb}")
        return Job(row.id, action, row.subject, row.group_name, grant_id)

    @staticmethod
    def _grant_row(s: Session, row: RequestRow, now: datetime) -> GrantRow:
        grant = s.scalar(select(GrantRow).where(GrantRow.request_id == row.id))
        if grant is None:
            start = max(row.start_at or now, now)
            if row.end_at is None:  # a duration: it counts from now, the activation
                assert row.duration_s is not None
                row.end_at = start + timedelta(seconds=row.duration_s)
            grant = grants.add(s, row.id, row.subject, row.group_name, start, row.end_at, now)
        return grant

    def _step_recorder(self, request_ids: list[int]) -> membership.OnStep:
        core = self._core

        def record(outcome: StepOutcome) -> None:
            with core.db.write() as s:
                for request_id in request_ids:
                    timeline.note(
                        s,
                        request_id,
                        core.now(),
                        f"step:{outcome.step}",
                        RUNNER.name,
                        f"{outcome.step}: {outcome.output}",
                        status="ok" if outcome.ok else "failed",
                    )

        return record

    def _grant(self, job: Job) -> RequestStatus:
        core = self._core
        assert job.grant_id is not None
        if job.rollback:
            return self._failed(job, "the run was interrupted or came too late", self._undo(job))
        errors: list[str] = []

        def on_step(outcome: StepOutcome) -> None:
            self._step_recorder([job.request_id])(outcome)
            if not outcome.ok:
                errors.append(f"{outcome.step}: {outcome.output}")

        with core.locks.hold(job.user, job.group):
            if membership.converge(core, job.user, job.group, on_step):
                return self._activated(job)
            # This grant no longer counts, so undoing it removes what the run added (or keeps
            # the membership an overlapping grant still needs).
            with core.db.write() as s:
                _mark_undo(s.get_one(GrantRow, job.grant_id), core.now())
        return self._failed(job, errors[0] if errors else "step failed", self._undo(job))

    def _undo(self, job: Job) -> bool:
        """Roll back through the one way grants end; True once the provider confirmed.

        Unconfirmed, the grant stays `ending` and the sweeper retries it with backoff, so a
        membership added by a failed run never stays behind.
        """
        assert job.grant_id is not None
        result = self._core.grants.end(
            [job.grant_id], EndReason.FAILED, RUNNER, note=f"request #{job.request_id} failed"
        )
        return not result.pending

    def _activated(self, job: Job) -> RequestStatus:
        core = self._core
        now = core.now()
        with core.db.write() as s:
            grant = s.get_one(GrantRow, job.grant_id)
            row = s.get_one(RequestRow, job.request_id)
            grants.move(grant, GrantStatus.ACTIVE)
            grant.activated_at = now
            move(row, RequestStatus.SUCCEEDED, now)
            row.runner_until = None
            timeline.note(
                s,
                row.id,
                now,
                "succeeded",
                RUNNER.name,
                f"grant #{grant.id} active until {iso(grant.end_at)}",
            )
            core.audit(
                s,
                AuditEvent(
                    "grant.activated",
                    RUNNER.name,
                    RUNNER.source,
                    subject=grant.user,
                    request_id=row.id,
                    grant_id=grant.id,
                    detail={
                        "group": grant.group_name,
                        "start": iso(grant.start_at),
                        "end": iso(grant.end_at),
                        "template": row.template,
                    },
                ),
            )
            core.audit(s, _request_event("request.succeeded", row))
            core.outbox.grant_activated(s, row, grant)
        core.publish(
            "grant.activated",
            request_id=job.request_id,
            grant_id=job.grant_id,
            user=job.user,
            group=job.group,
        )
        return RequestStatus.SUCCEEDED

    def _failed(self, job: Job, error: str, rolled_back: bool) -> RequestStatus:
        core = self._core
        now = core.now()
        with core.db.write() as s:
            row = s.get_one(RequestRow, job.request_id)
            move(row, RequestStatus.FAILED, now)
            row.runner_until = None
            undo = (
                "rolled back"
                if rolled_back
                else "the provider has not confirmed the rollback; it is retried until it does"
            )
            timeline.note(
                s,
                row.id,
                now,
                "failed",
                RUNNER.name,
                f"runbook failed ({error}); {undo}",
                status="failed",
            )
            core.audit(s, _request_event("request.failed", row, error=error[:500]))
            core.outbox.runbook_finished(s, row, ok=False, detail=f"it failed ({error}); {undo}")
        core.publish("request.decided", request_id=job.request_id)
        return RequestStatus.FAILED

    def _remove(self, job: Job) -> RequestStatus:
        core = self._core
        with core.db.read() as s:
            grant_ids = grants.endable_ids(s, job.user, job.group)
        result = core.grants.end(
            grant_ids,
            EndReason.REMOVED,
            RUNNER,
            note=f"removed by request #{job.request_id}",
            also_on=job.request_id,
        )
        now = core.now()
        with core.db.write() as s:
            row = s.get_one(RequestRow, job.request_id)
            done = not result.pending
            new = RequestStatus.SUCCEEDED if done else RequestStatus.FAILED
            move(row, new, now)
            row.runner_until = None
            if done:
                message = f"removed {job.user} from {job.group} ({len(result.ended)} grant(s))"
            else:
                message = (
                    "access ended in sekisho; the provider has not confirmed the removal and "
                    "it will be retried"
                )
            timeline.note(
                s,
                row.id,
                now,
                new.value,
                RUNNER.name,
                message,
                status="ok" if done else "failed",
            )
            core.audit(s, _request_event(f"request.{new.value}", row))
            core.outbox.runbook_finished(s, row, ok=done, detail=message)
        core.publish("request.decided", request_id=job.request_id)
        return new


def _mark_undo(grant: GrantRow, retry_at: datetime) -> None:
    """Hand a grant whose run failed to the end path. Never usable; its steps are undone."""
    if grant.status != GrantStatus.ACTIVATING:
        return  # already being undone, or undone
    check_ending(GrantStatus(grant.status), EndReason.FAILED)
    grants.move(grant, GrantStatus.ENDING)
    grant.end_reason, grant.ended_by = EndReason.FAILED, RUNNER.name
    grant.end_note = "the runbook failed; undoing its steps"
    grant.retry_at = retry_at  # if this process dies now, the sweeper takes over


def _request_event(action: str, row: RequestRow, **detail: str) -> AuditEvent:
    return AuditEvent(
        action,
        RUNNER.name,
        RUNNER.source,
        outcome="failed" if "failed" in action else "ok",
        subject=row.subject,
        request_id=row.id,
        detail={"template": row.template, "group": row.group_name, **detail},
    )
