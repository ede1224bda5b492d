"""Filing and deciding requests: FileRequest, DecideRequest, CancelRequest, ExpireUndecided."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain import drafts
from sekisho.domain.access import AccessModel, Template, TemplateAction
from sekisho.domain.actor import Actor
from sekisho.domain.drafts import ReadDraft, RequestDraft
from sekisho.domain.errors import Conflict, InvalidInput, Locked, NotFound
from sekisho.domain.events import (
    EmergencyUsed,
    RequestAutoApproved,
    RequestCancelled,
    RequestDecided,
    RequestExpiredUndecided,
    RequestFiled,
)
from sekisho.domain.locks import lock_of_membership, lock_of_user
from sekisho.domain.requests import (
    ApprovalDecision,
    RequestStatus,
    check_cancel,
    check_decidable,
    decide,
)
from sekisho.domain.step_up import Proof, StepUpAct, how_to_step_up
from sekisho.domain.text import LONG_TEXT, check_text
from sekisho.operations.passkeys import require_step_up
from sekisho.operations.runbook import Job, RunRunbook
from sekisho.operations.tickets import check_tickets
from sekisho.ports import ModelSource, Tickets
from sekisho.services import permissions
from sekisho.store import grants, locks, requests
from sekisho.store.tables import DecisionRow, RequestRow
from sekisho.store.unit_of_work import Store, UnitOfWork


class FileRequest:
    """A person asks for access (or for a removal); an auto-approved template runs at once."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        runbook: RunRunbook,
        tickets: Tickets,
    ) -> None:
        self._store, self._clock, self._models, self._runbook = store, clock, models, runbook
        self._tickets = tickets

    def execute(self, actor: Actor, draft: RequestDraft) -> int:
        check_tickets(self._tickets, self._models.model(), draft)
        now = self._clock.now()
        with self._store.write() as uow:
            s = uow.session
            model_id, model = self._models.current(s)
            read = drafts.read_draft(
                model, actor.name, draft, now, for_others=permissions.is_admin(model, actor)
            )
            if read.template.action is TemplateAction.GRANT:
                check_not_locked(s, model, (actor.name, read.subject, read.group.name), now)
            stepped_up(s, model, read.template, StepUpAct.REQUEST, actor, now, "New request")
            _check_no_duplicate(s, read)
            if read.template.action is TemplateAction.REMOVE:
                _check_something_to_remove(s, read.subject, read.group.name, now)
            row = _new_request(model, model_id, actor, read, now)
            s.add(row)
            s.flush()
            uow.record(RequestFiled(now, row.id, actor, read.summary))
            job = None
            if read.emergency is not None or read.template.auto_approve:
                requests.move(row, RequestStatus.APPROVED, now)
                if row.emergency:  # break-glass is its own event: nobody approved it
                    uow.record(EmergencyUsed(now, row.id, actor))
                else:
                    uow.record(RequestAutoApproved(now, row.id))
                job = self._runbook.claim(uow, row)
            request_id = row.id
        if job is not None:
            self._runbook.run(job)
        return request_id


class DecideRequest:
    """An approver approves or rejects the level that waits; the last approval runs it."""

    def __init__(
        self, store: Store, clock: Clock, models: ModelSource, runbook: RunRunbook
    ) -> None:
        self._store, self._clock, self._models, self._runbook = store, clock, models, runbook

    def execute(
        self, actor: Actor, request_id: int, decision: ApprovalDecision, comment: str
    ) -> None:
        comment = check_text("comment", comment or "", max_length=LONG_TEXT, multiline=True)
        if decision is ApprovalDecision.REJECT and not comment:
            raise InvalidInput.one("comment", "required", "say why you reject the request")
        with self._store.write() as uow:
            model = self._models.model(uow.session)
            _lock_extended_grant(uow.session, request_id)
            row = requests.lock(uow.session, request_id)
            if not permissions.may_view_request(model, actor, row):
                raise NotFound(f"no request #{request_id}")
            now = self._clock.now()
            approver_lock = lock_of_user(locks.in_force(uow.session, now), actor.name)
            if approver_lock is not None:
                raise Locked(approver_lock.message)
            if decision is ApprovalDecision.APPROVE and row.action == TemplateAction.GRANT:
                check_not_locked(uow.session, model, row, now)
            proof = None
            if decision is ApprovalDecision.APPROVE:
                template, where = model.template(row.template), f"request #{row.id}"
                act = StepUpAct.APPROVE
                proof = stepped_up(uow.session, model, template, act, actor, now, where)
            job = self._decide(uow, model, row, actor, decision, comment, proof)
        if job is not None:
            self._runbook.run(job)

    def _decide(
        self,
        uow: UnitOfWork,
        model: AccessModel,
        row: RequestRow,
        actor: Actor,
        decision: ApprovalDecision,
        comment: str,
        proof: Proof | None,
    ) -> Job | None:
        now = self._clock.now()
        status = RequestStatus(row.status)
        template = check_decidable(
            request_id=row.id,
            template_name=row.template,
            template=model.template(row.template),
            status=status,
            level=row.level,
            decide_by=row.decide_by,
            now=now,
        )
        outcome = decide(
            template=template,
            status=status,
            level=row.level,
            requester=row.requester,
            subject=row.subject,
            approver=actor.name,
            approver_groups=frozenset(g.name for g in model.standing_groups_of(actor.name)),
            decisions=[requests.recorded(d) for d in row.decisions],
            decision=decision,
        )
        decided_level = row.level
        uow.session.add(
            DecisionRow(
                request_id=row.id,
                level=row.level,
                approver=actor.name,
                decision=decision.value,
                comment=comment,
                decided_at=now,
            )
        )
        if outcome.new_status is not status:  # a level passed, the request stays pending
            requests.move(row, outcome.new_status, now)
        row.level, row.updated_at = outcome.new_level, now
        approved = decision is ApprovalDecision.APPROVE
        final = outcome.new_status is not RequestStatus.PENDING_APPROVAL
        uow.record(
            RequestDecided(now, row.id, actor, approved, decided_level, comment, final, proof)
        )
        # Claimed in this transaction: nobody else can run it, and nobody sees it waiting.
        if row.status == RequestStatus.APPROVED:
            return self._runbook.claim(uow, row)
        return None


class CancelRequest:
    """The requester withdraws a request nobody has decided yet."""

    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def execute(self, actor: Actor, request_id: int) -> None:
        now = self._clock.now()
        with self._store.write() as uow:
            model = self._models.model(uow.session)
            row = requests.lock(uow.session, request_id)
            if not permissions.may_view_request(model, actor, row):
                raise NotFound(f"no request #{request_id}")
            check_cancel(
                request_id=row.id,
                canceller=actor.name,
                requester=row.requester,
                status=RequestStatus(row.status),
            )
            requests.move(row, RequestStatus.CANCELLED, now)
            uow.record(RequestCancelled(now, row.id, actor))


class ExpireUndecided:
    """Nobody decided before the deadline: the request closes. False if it was not due."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self, request_id: int) -> bool:
        now = self._clock.now()
        with self._store.write() as uow:
            row = requests.lock(uow.session, request_id)
            if row.status != RequestStatus.PENDING_APPROVAL or now < row.decide_by:
                return False
            requests.move(row, RequestStatus.EXPIRED_UNAPPROVED, now)
            uow.record(RequestExpiredUndecided(now, row.id))
        return True


def _lock_extended_grant(session: Session, request_id: int) -> None:
    """An extension's approval moves its grant's end: the grant is locked before the request,
    in the order a lock placement takes them (grants, then requests), so that the two never
    wait on each other (PostgreSQL would abort one as a deadlock)."""
    grant_id = session.scalar(
        select(RequestRow.extends_grant_id).where(RequestRow.id == request_id)
    )
    if grant_id is not None:
        grants.lock(session, grant_id)


def _new_request(
    model: AccessModel, model_id: int, actor: Actor, read: ReadDraft, now: datetime
) -> RequestRow:
    window = read.window
    return RequestRow(
        template=read.template.name,
        action=read.template.action.value,
        requester=actor.name,
        subject=read.subject,
        group_name=read.group.name,
        start_at=window.start_at,
        end_at=window.end_at,
        duration_s=int(window.duration.total_seconds()) if window.duration else None,
        reason=read.reason,
        change_info=read.info,
        params=read.params,
        status=RequestStatus.PENDING_APPROVAL,
        level=0,
        created_at=now,
        updated_at=now,
        decide_by=drafts.decide_by(model, window, now),
        model_id=model_id,
        **_emergency_fields(read, now),
    )


def _emergency_fields(read: ReadDraft, now: datetime) -> dict[str, object]:
    """An emergency's columns: its review is due `review_within` after the grant began,
    which is now (an emergency starts at once); the sweep first reports it then."""
    if read.emergency is None:
        return {"emergency": False}
    due = now + read.emergency.review_within
    return {"emergency": True, "review_due_at": due, "review_next_at": due}


def stepped_up(
    s: Session,
    model: AccessModel,
    template: Template | None,
    act: StepUpAct,
    actor: Actor,
    now: datetime,
    where: str,
) -> Proof | None:
    """The fresh proof the template asks for `act`, or StepUpRequired saying how to show it."""
    rule = template.step_up_for(act) if template is not None else None
    if rule is None:
        return None
    return require_step_up(s, rule, actor, now, how_to_step_up(rule, act, where, _idp(model)))


def _idp(model: AccessModel) -> str | None:
    oidc = model.identity.oidc
    return (oidc.display_name or "your identity provider") if oidc is not None else None


def check_not_locked(
    session: Session,
    model: AccessModel,
    asked: RequestRow | tuple[str, str, str],  # a request, or (requester, subject, group)
    now: datetime,
) -> None:
    """Locked (`Locked`) if a lock in force covers the requester, the subject or the group."""
    if isinstance(asked, RequestRow):
        asked = (asked.requester, asked.subject, asked.group_name)
    requester, subject, group = asked
    in_force = locks.in_force(session, now)
    found = lock_of_user(in_force, requester) or lock_of_membership(in_force, model, subject, group)
    if found is not None:
        raise Locked(found.message)


def _check_no_duplicate(session: Session, read: ReadDraft) -> None:
    user, group, action = read.subject, read.group.name, read.template.action.value
    _one_filing_at_a_time(session, user, group, action)
    open_statuses = (RequestStatus.PENDING_APPROVAL, RequestStatus.APPROVED)
    existing = session.scalar(
        select(RequestRow.id).where(
            RequestRow.subject == user,
            RequestRow.group_name == group,
            RequestRow.action == action,
            RequestRow.status.in_(open_statuses),
            # An extension asks for more time on a grant held already, not for a new one.
            RequestRow.extends_grant_id.is_(None),
        )
    )
    if existing is not None:
        raise Conflict(f"request #{existing} for {user} in {group} is already open")


def _check_something_to_remove(session: Session, user: str, group: str, now: datetime) -> None:
    if grants.held_grant(session, user, group, now) is None:
        raise InvalidInput.one(
            "group", "no_active_grant", f"{user} holds no active grant in {group}"
        )


def _one_filing_at_a_time(session: Session, user: str, group: str, action: str) -> None:
    """Serialise filings for one (subject, group, action) until this transaction ends.

    Two identical filings at once would each find no open request and both insert one. On
    PostgreSQL a transaction-scoped advisory lock makes the second wait for the first to
    commit; its check (a new snapshot under READ COMMITTED) then sees the first's request.
    SQLite's writers are serialised already. The key is namespaced so it never meets the
    membership locks (`services.membership_locks`), which are held across provider calls.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"request-filing\0{user}\0{group}\0{action}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
