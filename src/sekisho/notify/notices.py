"""The notification hooks: what the effect handlers call, inside the change's transaction.

A hook asks the routes whether anyone hears of the event, has the notice worded, and writes
it to the outbox in the caller's transaction: the change, its audit entry and its messages
commit together or not at all. A hook never calls the network (the dispatcher delivers
later); without a route for an event, it writes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel, ChannelType, NotifyEvent, Template
from sekisho.domain.actor import Actor
from sekisho.domain.grants import EndingGrant, EndReason
from sekisho.domain.locks import Lock
from sekisho.domain.requests import RequestStatus
from sekisho.notify import admin_notices, grant_notices, reminders, reports, request_notices
from sekisho.notify.message import Notice
from sekisho.notify.outbox import enqueue, order_key, row_values
from sekisho.notify.routing import routed
from sekisho.notify.slack_app import SETTLED
from sekisho.notify.wording import Wording
from sekisho.ports import ModelSource
from sekisho.store.tables import GrantRow, NotificationRow, RequestRow

if TYPE_CHECKING:
    from sekisho.services.audit_anchor import Checkpoint


class Notices:
    """One hook per thing people hear of. `public_url` is where messages link to; `node`
    names this server in the audit checkpoint's message."""

    def __init__(self, models: ModelSource, clock: Clock, *, public_url: str, node: str) -> None:
        self._models, self._clock = models, clock
        self._public_url, self._node = public_url, node

    # -- requests -----------------------------------------------------------------------------

    def request_filed(self, s: Session, model: AccessModel, row: RequestRow) -> None:
        """A new request: its first level's approvers are asked."""
        template = model.template(row.template)
        if template is None or template.auto_approve or row.level >= len(template.approval):
            return
        if row.emergency:  # approved already: its approvers are alerted (`emergency_used`)
            return
        if row.status != RequestStatus.PENDING_APPROVAL:  # a self-service extension
            return
        self._approval_needed(s, model, row, template, frozenset())

    def emergency_used(self, s: Session, model: AccessModel, row: RequestRow) -> None:
        """Break-glass: every approver of the template and the `notify` groups are alerted."""
        template = model.template(row.template)
        if template is not None and routed(model, NotifyEvent.EMERGENCY_USED, row.template):
            notice = request_notices.emergency_used(self._wording(model), row, template)
            self._enqueue(s, model, notice)

    def review_overdue(self, s: Session, model: AccessModel, row: RequestRow, at: datetime) -> None:
        """An emergency nobody reviewed in time: its approvers and the admins, again daily."""
        template = model.template(row.template)
        if template is not None and routed(model, NotifyEvent.REVIEW_OVERDUE, row.template):
            w = Wording(model, self._public_url, at)
            enqueue(s, model, request_notices.review_overdue(w, row, template), at)

    def request_decided(
        self,
        s: Session,
        model: AccessModel,
        row: RequestRow,
        decider: str,
        verb: str,  # approved | rejected
        comment: str,
        level: int,  # the level decided, 0-based
    ) -> None:
        """After a decision (row already moved on): tell the requester; once the level is
        settled, tell its other approvers; if the next level waits, ask its approvers."""
        template = model.template(row.template)
        if template is None or level >= len(template.approval):
            return
        w = self._wording(model)
        notice = request_notices.decided(w, row, template, decider, verb, comment, level)
        if routed(model, NotifyEvent.REQUEST_DECIDED, row.template):
            self._enqueue(s, model, notice)
        if row.status != RequestStatus.PENDING_APPROVAL or row.level > level:
            # Before the next level is asked: its new messages stay as they are.
            self._settle_in_chat(s, model, row, notice)
        if row.status == RequestStatus.PENDING_APPROVAL and row.level > level:
            decided = frozenset({d.approver for d in row.decisions} | {decider})
            self._approval_needed(s, model, row, template, decided)

    def request_closed(self, s: Session, row: RequestRow, how: str, why: str = "") -> None:
        """Cancelled by the requester, expired undecided, or closed by a lock (`why` says
        which): nobody needs to act any more."""
        model = self._models.model(s)
        template = model.template(row.template)
        notice = request_notices.closed(self._wording(model), row, template, how, why)
        if routed(model, NotifyEvent.REQUEST_DECIDED, row.template):
            self._enqueue(s, model, notice)
        self._settle_in_chat(s, model, row, notice)

    def runbook_finished(self, s: Session, row: RequestRow, *, ok: bool, detail: str) -> None:
        """A remove request's result, or any failed runbook (a success that grants access is
        `grant_activated`)."""
        model = self._models.model(s)
        if routed(model, NotifyEvent.RUNBOOK_FINISHED, row.template):
            w = self._wording(model)
            notice = request_notices.runbook_finished(w, row, ok=ok, detail=detail)
            self._enqueue(s, model, notice)

    # -- grants -------------------------------------------------------------------------------

    def grant_activated(self, s: Session, row: RequestRow, grant: GrantRow) -> None:
        """Access starts: tell the holder; schedule the reminder before its end."""
        model = self._models.model(s)
        reminders.schedule(s, model, row, grant)
        if routed(model, NotifyEvent.GRANT_ACTIVATED, row.template):
            self._enqueue(s, model, grant_notices.activated(self._wording(model), row, grant))

    def grant_extended(self, s: Session, row: RequestRow, grant: GrantRow) -> None:
        """The grant's end moved: the reminder before it moves too (sent again if the one
        before the old end has gone out already)."""
        reminders.drop(s, grant.id)
        reminders.schedule(s, self._models.model(s), row, grant)

    def grant_ending_soon(
        self, s: Session, model: AccessModel, row: RequestRow, grant: GrantRow, at: datetime
    ) -> None:
        """A due reminder the sweep took (`SendReminders`): the holder's access ends soon."""
        w = Wording(model, self._public_url, at)
        enqueue(s, model, grant_notices.ending_soon(w, row, grant, at), at)

    def grant_ended(self, s: Session, grant: EndingGrant) -> None:
        """Access ended (the grant turned `ending`): tell the holder, once."""
        model = self._models.model(s)
        if not model.notifications.routes:
            return
        reminders.drop(s, grant.id)
        row = s.get(RequestRow, grant.request_id)
        if grant.reason is EndReason.FAILED or row is None:
            return  # never usable: the failed runbook's own message says so
        if routed(model, NotifyEvent.GRANT_ENDED, row.template):
            w = self._wording(model)
            stored = s.get_one(GrantRow, grant.id)
            self._enqueue(s, model, grant_notices.ended(w, row, stored, grant.reason))

    # -- reports and the audit trail ------------------------------------------------------------

    def ending_outcome(self, s: Session, grant: EndingGrant, actor: Actor, confirmed: bool) -> None:
        """After the provider answered for an ending (in its transaction): a report line for
        what the expiry sweep ended, and for every removal the provider did not confirm."""
        if not routed(self._models.model(s), NotifyEvent.EXPIRY_REPORT, None):
            return
        line = reports.ending_line(grant, actor, confirmed)
        if line is not None:
            outcome, detail = line
            reports.add_line(
                s,
                self._clock.now(),
                source=reports.EXPIRY,
                outcome=outcome,
                user=grant.user,
                group=grant.group,
                detail=detail,
                grant_id=grant.id,
                request_id=grant.request_id,
            )

    def report_line(
        self,
        s: Session,
        *,
        source: str,  # expiry | reconcile
        outcome: str,  # ended | recovered | fixed | failed
        user: str,
        group: str,
        detail: str,
        grant_id: int | None = None,
        request_id: int | None = None,
    ) -> None:
        """One line of the next report, in the caller's transaction (the reconciler's too).
        `ComposeReports` gathers the lines into one message per source. Nothing is written
        unless the source's report is routed."""
        if routed(self._models.model(s), reports.report_event(source), None):
            reports.add_line(
                s,
                self._clock.now(),
                source=source,
                outcome=outcome,
                user=user,
                group=group,
                detail=detail,
                grant_id=grant_id,
                request_id=request_id,
            )

    def report_composed(
        self, s: Session, model: AccessModel, source: str, report_key: str, at: datetime
    ) -> None:
        """The lines `ComposeReports` gathered under `report_key` become one message."""
        lines = reports.lines_of(s, report_key)
        notice = admin_notices.report(Wording(model, self._public_url, at), source, lines)
        enqueue(s, model, notice, at)

    def audit_checkpoint(
        self, s: Session, checkpoint: Checkpoint | None, problems: list[str]
    ) -> None:
        """A signed checkpoint of the audit trail, or a refusal to sign one, to the admins:
        one more copy of the anchor outside the database. In the checkpoint's transaction."""
        model = self._models.model(s)
        if routed(model, NotifyEvent.AUDIT_CHECKPOINT, None):
            w = self._wording(model)
            self._enqueue(s, model, admin_notices.checkpoint(w, self._node, checkpoint, problems))

    def lock_changed(self, s: Session, lock: Lock, *, placed: bool, ended: int = 0) -> None:
        """A lock placed (with how many grants it ended) or removed: to those who may lock."""
        model = self._models.model(s)
        if routed(model, NotifyEvent.LOCK_CHANGED, None):
            w = self._wording(model)
            self._enqueue(s, model, admin_notices.lock_changed(w, lock, placed, ended))

    # -- helpers ------------------------------------------------------------------------------

    def _approval_needed(
        self,
        s: Session,
        model: AccessModel,
        row: RequestRow,
        template: Template,
        decided: frozenset[str],
    ) -> None:
        if routed(model, NotifyEvent.APPROVAL_NEEDED, row.template):
            w = self._wording(model)
            self._enqueue(s, model, request_notices.approval_needed(w, row, template, decided))

    def _settle_in_chat(
        self, s: Session, model: AccessModel, row: RequestRow, outcome: Notice
    ) -> None:
        """The Slack app's messages that asked for this request's approval now say how it
        ended (their buttons gone), and the requester is told in a direct message."""
        apps = [
            c
            for c in model.notifications.channels_for(NotifyEvent.APPROVAL_NEEDED, row.template)
            if c.type is ChannelType.SLACK_APP
        ]
        if not apps:
            return
        requester = model.user(row.requester)
        data = {
            "requester_slack": requester.slack_id if requester else None,
            "requester_email": requester.email if requester else None,
        }
        message = replace(outcome.broadcast, data=outcome.broadcast.data | data)
        now = self._clock.now()
        rows = [row_values(SETTLED, c.name, None, message, now, order_key(outcome)) for c in apps]
        s.execute(insert(cast(Table, NotificationRow.__table__)), rows)

    def _wording(self, model: AccessModel) -> Wording:
        return Wording(model, self._public_url, self._clock.now())

    def _enqueue(self, s: Session, model: AccessModel, notice: Notice) -> None:
        enqueue(s, model, notice, self._clock.now())
