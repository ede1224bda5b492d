"""The outbox: notifications written in the same transaction as the change they tell of.

Services call a hook here where they already audit, inside their own transaction: the change,
its audit entry and its messages commit together or not at all. A hook never calls the
network (the dispatcher delivers later), so a channel that is down never slows or blocks the
workflow. Without a route for an event, a hook writes nothing.

One message per channel; on a personal e-mail channel, one per person concerned, each
worded for why they hear of it (approver, requester, holder, admin). Every message links to
the request's page, `{public_url}/requests/{id}`.

Reports (the expiry sweep's, the reconciler's) are built from report lines, written with each
ending they report; a pass then gathers every line no report has taken into one message, so
a crash between an ending and its report loses no line, and a mass expiry sends one report.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel, NotifyEvent, Template, TemplateAction
from sekisho.domain.actor import Actor
from sekisho.domain.errors import NotFound
from sekisho.domain.grants import EndReason, GrantStatus
from sekisho.domain.requests import RequestStatus
from sekisho.domain.text import check_email
from sekisho.domain.timespec import format_duration, iso
from sekisho.notify.message import Message
from sekisho.services import policy
from sekisho.services.wording import Wording, clip
from sekisho.store.tables import (
    GrantRow,
    NotificationRow,
    ReminderRow,
    ReportLineRow,
    RequestRow,
)

if TYPE_CHECKING:
    from sekisho.services.audit_anchor import Checkpoint
    from sekisho.services.core import Core

APPROVER = "approver"  # asked to decide
REQUESTER = "requester"  # filed it, or is the user it is for
HANDLED = "handled"  # an approver whose decision is no longer needed
HOLDER = "holder"  # holds (or held) the grant
ADMIN = "admin"  # administers sekisho: reports

TEST_EVENT = "notify.test"
SCHEDULER = Actor.system("scheduler")
ORPHAN_AFTER = timedelta(minutes=1)  # lines a pass did not gather (it died): the dispatcher's
REPORT_MAX_LINES = 200

# Report-line outcomes
ENDED, RECOVERED, FAILED, FIXED = "ended", "recovered", "failed", "fixed"
EXPIRY, RECONCILE = "expiry", "reconcile"


@dataclass
class Notice:
    """One occurrence of an event: the channel's message, and each person's own."""

    event: str
    template: str | None
    request_id: int | None
    grant_id: int | None
    broadcast: Message
    personal: dict[str, Message] = field(default_factory=dict)  # user -> message


@dataclass(frozen=True)
class ChannelStatus:
    name: str
    type: str | None  # None: no longer in the model
    pending: int  # not yet delivered (including failing)
    failing: int  # pending, and failed at least once
    delivered: int
    failed: int  # given up
    last_error: str | None
    last_error_at: datetime | None
    last_delivered_at: datetime | None
    oldest_pending_at: datetime | None
    problems: tuple[str, ...] = ()  # configuration: a variable not set, a CA file missing

    @property
    def healthy(self) -> bool:
        return not (self.failing or self.failed or self.problems)


def report_worthy(attempts: int) -> bool:
    """A failing ending is reported at its 1st, 4th, 16th, 64th... attempt: seen at once,
    then less and less often while it keeps failing (retries back off to every few minutes)."""
    while attempts > 1 and attempts % 4 == 0:
        attempts //= 4
    return attempts == 1


class OutboxService:
    def __init__(self, core: Core) -> None:
        self._core = core

    # -- hooks, each inside the caller's transaction --------------------------------------

    def request_filed(self, s: Session, model: AccessModel, row: RequestRow) -> None:
        """A new request: its first level's approvers are asked."""
        template = model.template(row.template)
        if template is None or template.auto_approve or row.level >= len(template.approval):
            return
        self._approval_needed(s, model, row, template, frozenset())

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
        decided = frozenset({d.approver for d in row.decisions} | {decider})
        settled = row.status != RequestStatus.PENDING_APPROVAL or row.level > level
        if self._routed(model, NotifyEvent.REQUEST_DECIDED, row.template):
            self._enqueue(
                s,
                model,
                self._decided_notice(model, row, template, decider, verb, comment, level, settled),
            )
        if row.status == RequestStatus.PENDING_APPROVAL and row.level > level:
            self._approval_needed(s, model, row, template, decided)

    def request_closed(self, s: Session, row: RequestRow, how: str) -> None:
        """Cancelled by the requester, or expired undecided: nobody needs to act any more."""
        model = self._model(s)
        if not self._routed(model, NotifyEvent.REQUEST_DECIDED, row.template):
            return
        w = Wording(self._core, model)
        template = model.template(row.template)
        decided = frozenset(d.approver for d in row.decisions)
        waiting = self._level_approvers(model, template, row, decided) if template else []
        if how == "cancelled":
            title = f"Request #{row.id} was cancelled by {row.requester}"
            summary = f"{w.who(row.requester)} cancelled the request {w.about(row)}."
            mine: dict[str, Message] = {}
        else:
            title = f"Request #{row.id} expired: nobody decided in time"
            summary = (
                f"Nobody decided the request {w.about(row)} by {w.when(row.decide_by)}; it is "
                "closed. File a new one if access is still needed."
            )
            mine = {u: w.message(row, title, summary, REQUESTER) for u in w.concerned(row)}
        handled_summary = f"{summary} Your decision is no longer needed."
        for user in waiting:
            mine.setdefault(user, w.message(row, title, handled_summary, HANDLED))
        broadcast = w.message(row, title, summary, "", recipients=_roles(mine))
        self._enqueue(
            s,
            model,
            Notice(NotifyEvent.REQUEST_DECIDED, row.template, row.id, None, broadcast, mine),
        )

    def runbook_finished(self, s: Session, row: RequestRow, *, ok: bool, detail: str) -> None:
        """A remove request's result, or any failed runbook (a success that grants access is
        `grant_activated`)."""
        model = self._model(s)
        if not self._routed(model, NotifyEvent.RUNBOOK_FINISHED, row.template):
            return
        w = Wording(self._core, model)
        removal = row.action == TemplateAction.REMOVE.value
        if ok:
            title = f"Request #{row.id} done: {row.subject} removed from {row.group_name}"
        elif removal:
            title = f"Request #{row.id}: access ended, removal not yet confirmed"
        else:
            title = f"Request #{row.id} failed: no access was granted"
        summary = f"The runbook for the request {w.about(row)} finished: {clip(detail)}."
        mine = {u: w.message(row, title, summary, REQUESTER) for u in w.concerned(row)}
        broadcast = w.message(row, title, summary, "", recipients=_roles(mine))
        self._enqueue(
            s,
            model,
            Notice(NotifyEvent.RUNBOOK_FINISHED, row.template, row.id, None, broadcast, mine),
        )

    def grant_activated(self, s: Session, row: RequestRow, grant: GrantRow) -> None:
        """Access starts: tell the holder; schedule the reminder before its end."""
        model = self._model(s)
        settings = model.notifications
        if self._routed(model, NotifyEvent.GRANT_ENDING_SOON, row.template):
            due = grant.end_at - settings.remind_before
            if due > grant.start_at:  # a grant shorter than the lead time gets none
                s.add(ReminderRow(grant_id=grant.id, due_at=due))
        if not self._routed(model, NotifyEvent.GRANT_ACTIVATED, row.template):
            return
        w = Wording(self._core, model)
        length = format_duration(grant.end_at - grant.start_at)
        title = f"Access granted: {grant.user} in {grant.group_name} until {w.when(grant.end_at)}"
        summary = (
            f"The runbook of request #{row.id} succeeded: {w.who(grant.user)} is in "
            f"{grant.group_name} for {length}, until {w.when(grant.end_at)}. Access ends by "
            f"itself then; release it earlier with `sekisho grant release {grant.id}`."
        )
        self._grant_notice(s, model, w, NotifyEvent.GRANT_ACTIVATED, row, grant, title, summary)

    def grant_ended(self, s: Session, grant: GrantRow) -> None:
        """Access ended (the grant turned `ending`): tell the holder, once."""
        model = self._model(s)
        if not model.notifications.routes:
            return
        s.execute(delete(ReminderRow).where(ReminderRow.grant_id == grant.id))
        reason = EndReason(grant.end_reason or EndReason.EXPIRED)
        row = s.get(RequestRow, grant.request_id)
        if reason is EndReason.FAILED or row is None:
            return  # never usable: the failed runbook's own message says so
        if not self._routed(model, NotifyEvent.GRANT_ENDED, row.template):
            return
        w = Wording(self._core, model)
        why = {
            EndReason.EXPIRED: f"it reached its end at {w.when(grant.end_at)}",
            EndReason.RELEASED: "the holder released it",
            EndReason.REVOKED: f"{grant.ended_by} revoked it: {clip(grant.end_note or '')}",
            EndReason.REMOVED: f"a remove request ended it ({clip(grant.end_note or '')})",
        }[reason]
        title = f"Access ended: {grant.user} in {grant.group_name} ({reason.value})"
        summary = (
            f"Grant #{grant.id} of {w.who(grant.user)} in {grant.group_name} ended: {why}. "
            "Need access again? File a new request."
        )
        self._grant_notice(s, model, w, NotifyEvent.GRANT_ENDED, row, grant, title, summary)

    def ending_outcome(self, s: Session, grant: GrantRow, actor: Actor, confirmed: bool) -> None:
        """After the provider answered for an ending (in its transaction): a report line for
        what the expiry sweep ended, and for every removal the provider did not confirm."""
        model = self._model(s)
        if not self._routed(model, NotifyEvent.EXPIRY_REPORT, None):
            return
        if confirmed and grant.end_attempts:
            outcome = RECOVERED
            detail = f"removed after {grant.end_attempts + 1} attempts ({grant.status})"
        elif confirmed and actor == SCHEDULER:
            outcome, detail = ENDED, f"{grant.status} at {iso(grant.end_at)}"
        elif not confirmed and report_worthy(grant.end_attempts):
            outcome = FAILED
            detail = f"attempt {grant.end_attempts}: {grant.last_error or 'no answer'}"
        else:
            return
        self._line(
            s,
            source=EXPIRY,
            outcome=outcome,
            user=grant.user,
            group=grant.group_name,
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
        `compose_reports` gathers the lines into one message per source. Nothing is written
        unless the source's report is routed."""
        event = NotifyEvent.EXPIRY_REPORT if source == EXPIRY else NotifyEvent.RECONCILE_REPORT
        if self._routed(self._model(s), event, None):
            self._line(
                s,
                source=source,
                outcome=outcome,
                user=user,
                group=group,
                detail=detail,
                grant_id=grant_id,
                request_id=request_id,
            )

    def audit_checkpoint(
        self, s: Session, checkpoint: Checkpoint | None, problems: list[str]
    ) -> None:
        """A signed checkpoint of the audit trail, or a refusal to sign one, to the admins:
        one more copy of the anchor outside the database. In the checkpoint's transaction."""
        from sekisho.services.audit_checkpoints import checkpoint_notice

        model = self._model(s)
        if self._routed(model, NotifyEvent.AUDIT_CHECKPOINT, None):
            self._enqueue(s, model, checkpoint_notice(self._core, model, checkpoint, problems))

    def _line(
        self,
        s: Session,
        *,
        source: str,
        outcome: str,
        user: str,
        group: str,
        detail: str,
        grant_id: int | None,
        request_id: int | None,
    ) -> None:
        s.add(
            ReportLineRow(
                source=source,
                outcome=outcome,
                user=user,
                group_name=group,
                grant_id=grant_id,
                request_id=request_id,
                detail=detail[:2000],
                at=self._core.now(),
            )
        )

    # -- work with its own transaction ----------------------------------------------------

    def send_reminders(self, limit: int = 500) -> list[int]:
        """Write the reminders that are due; return their grants. Called by the sweep."""
        core = self._core
        now = core.now()
        sent: list[int] = []
        with core.db.read() as s:
            first = self.next_reminder(s)
        if first is None or first > now:
            return sent  # the common case: no write transaction at all
        with core.db.write() as s:
            due = list(
                s.scalars(
                    select(ReminderRow)
                    .where(ReminderRow.due_at <= now)
                    .order_by(ReminderRow.due_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            if not due:
                return sent
            model = self._model(s)
            for reminder in due:
                s.delete(reminder)
                grant = s.get(GrantRow, reminder.grant_id)
                if grant is None or grant.status != GrantStatus.ACTIVE or grant.end_at <= now:
                    continue  # ended meanwhile: nothing to remind of
                row = s.get_one(RequestRow, grant.request_id)
                if not self._routed(model, NotifyEvent.GRANT_ENDING_SOON, row.template):
                    continue
                w = Wording(core, model)
                left = format_duration(grant.end_at - now)
                title = f"Access ends in {left}: {grant.user} in {grant.group_name}"
                summary = (
                    f"Grant #{grant.id} of {w.who(grant.user)} in {grant.group_name} ends at "
                    f"{w.when(grant.end_at)}, in {left}. Save your work; to keep going, file a "
                    "new request."
                )
                self._grant_notice(
                    s, model, w, NotifyEvent.GRANT_ENDING_SOON, row, grant, title, summary
                )
                sent.append(grant.id)
        if sent:
            core.publish("notify.queued")
        return sent

    def next_reminder(self, s: Session) -> datetime | None:
        due: datetime | None = s.scalar(select(func.min(ReminderRow.due_at)))
        return due

    def next_orphan(self, s: Session) -> datetime | None:
        """When report lines no pass gathered (it died) are the dispatcher's to gather."""
        oldest: datetime | None = s.scalar(
            select(func.min(ReportLineRow.at)).where(ReportLineRow.report_key.is_(None))
        )
        return oldest + ORPHAN_AFTER if oldest is not None else None

    def compose_reports(self, older_than: timedelta = timedelta(0)) -> int:
        """Gather report lines no report has taken into one message per source; return how
        many reports were written. The lines and the report commit together."""
        core = self._core
        now = core.now()
        with core.db.read() as s:
            first = s.scalar(
                select(ReportLineRow.id)
                .where(ReportLineRow.report_key.is_(None), ReportLineRow.at <= now - older_than)
                .limit(1)
            )
        if first is None:
            return 0
        written = 0
        with core.db.write() as s:
            lines = list(
                s.scalars(
                    select(ReportLineRow)
                    .where(
                        ReportLineRow.report_key.is_(None),
                        ReportLineRow.at <= now - older_than,
                    )
                    .order_by(ReportLineRow.id)
                    .limit(5000)
                    .with_for_update(skip_locked=True)
                )
            )
            if not lines:
                return 0
            model = self._model(s)
            for source in (EXPIRY, RECONCILE):
                mine = [line for line in lines if line.source == source]
                if not mine:
                    continue
                key = uuid.uuid4().hex
                for line in mine:
                    line.report_key = key
                self._enqueue(s, model, self._report_notice(model, source, mine))
                written += 1
        if written:
            core.publish("notify.queued")
        return written

    def test(self, channel_name: str, to: list[str] | None = None) -> list[int]:
        """Queue a test message for one channel (ignoring routes); return the outbox ids."""
        core = self._core
        given = [check_email("to", address) for address in to or []]
        with core.db.write() as s:
            model = self._model(s)
            channel = model.notifications.channel(channel_name)
            if channel is None:
                known = ", ".join(c.name for c in model.notifications.channels) or "none"
                raise NotFound(f"no channel {channel_name!r} in the model (channels: {known})")
            w = Wording(core, model)
            message = Message(
                event=TEST_EVENT,
                title=f"sekisho test message for channel {channel.name}",
                summary=(
                    f"sekisho sent this to the {channel.type.value} channel {channel.name} "
                    "(`sekisho notify test`). If you read it, the channel works."
                ),
                link=w.home(),
                link_label="Open sekisho",
                occurred_at=iso(core.now()),
            )
            addresses: list[str | None] = [None]
            if channel.personal:
                addresses = list(given)
                if not addresses:
                    emails = (model.user(a) for a in model.admins())
                    addresses = [u.email for u in emails if u is not None and u.email]
                if not addresses:
                    raise NotFound("nobody to mail: give --to ADDRESS (no admin has an e-mail)")
            rows = [self._row(TEST_EVENT, channel.name, a, message) for a in addresses]
            s.add_all(rows)
            s.flush()
            return [r.id for r in rows]

    # -- reading --------------------------------------------------------------------------

    def status(self, actor: Actor) -> list[ChannelStatus]:
        """Per channel: pending, failing, delivered, given up, the last error."""
        from sekisho.notify.channels import config_problems

        core = self._core
        with core.db.read() as s:
            model = self._model(s)
            policy.require_admin(model, actor, "see the notification channels")
            tried = NotificationRow.last_error.is_not(None)
            counts = s.execute(
                select(
                    NotificationRow.channel,
                    NotificationRow.status,
                    tried,
                    func.count(),
                    func.max(NotificationRow.delivered_at),
                    func.min(NotificationRow.created_at),
                ).group_by(NotificationRow.channel, NotificationRow.status, tried)
            ).all()
            names = [c.name for c in model.notifications.channels]
            names += sorted({c for c, *_ in counts} - set(names))
            found = []
            for name in names:
                mine = [c for c in counts if c[0] == name]
                pending = sum(n for _, st, _, n, _, _ in mine if st == "pending")
                failing = sum(n for _, st, t, n, _, _ in mine if st == "pending" and t)
                delivered_at = [d for _, st, _, _, d, _ in mine if st == "delivered" and d]
                oldest = [c for _, st, _, _, _, c in mine if st == "pending" and c]
                last = s.execute(
                    select(NotificationRow.last_error, NotificationRow.last_error_at)
                    .where(
                        NotificationRow.channel == name,
                        NotificationRow.last_error_at.is_not(None),
                    )
                    .order_by(NotificationRow.last_error_at.desc())
                    .limit(1)
                ).first()
                channel = model.notifications.channel(name)
                found.append(
                    ChannelStatus(
                        name=name,
                        type=channel.type.value if channel else None,
                        pending=pending,
                        failing=failing,
                        delivered=sum(n for _, st, _, n, _, _ in mine if st == "delivered"),
                        failed=sum(n for _, st, _, n, _, _ in mine if st == "failed"),
                        last_error=last[0] if last else None,
                        last_error_at=last[1] if last else None,
                        last_delivered_at=max(delivered_at) if delivered_at else None,
                        oldest_pending_at=min(oldest) if oldest else None,
                        problems=tuple(config_problems(channel))
                        if channel
                        else ("not in the model any more",),
                    )
                )
            return found

    # -- helpers --------------------------------------------------------------------------

    def _model(self, s: Session) -> AccessModel:
        return self._core.models.model(s)

    @staticmethod
    def _routed(model: AccessModel, event: str, template: str | None) -> bool:
        return bool(model.notifications.routes) and bool(
            model.notifications.channels_for(event, template)
        )

    def _approval_needed(
        self,
        s: Session,
        model: AccessModel,
        row: RequestRow,
        template: Template,
        decided: frozenset[str],
    ) -> None:
        if not self._routed(model, NotifyEvent.APPROVAL_NEEDED, row.template):
            return
        w = Wording(self._core, model)
        level = template.approval[row.level]
        approvers = self._level_approvers(model, template, row, decided)
        where = f"level {row.level + 1} of {len(template.approval)}"
        need = f"{level.min_approvals} approval(s) from {level.approvers}"
        title = f"Request #{row.id} needs approval: {w.short(row)}"
        summary = f"{w.who(row.requester)} {w.asks(row)}. It waits at {where}: {need}."
        mine = {
            user: w.message(
                row,
                f"Please review request #{row.id}: {w.short(row)}",
                f"{summary} You are one of its approvers.",
                APPROVER,
                link_label=f"Review request #{row.id}",
            )
            for user in approvers
        }
        broadcast = w.message(
            row, title, summary, "", link_label=f"Review request #{row.id}", recipients=_roles(mine)
        )
        self._enqueue(
            s,
            model,
            Notice(NotifyEvent.APPROVAL_NEEDED, row.template, row.id, None, broadcast, mine),
        )

    @staticmethod
    def _level_approvers(
        model: AccessModel, template: Template, row: RequestRow, decided: frozenset[str]
    ) -> list[str]:
        if row.level >= len(template.approval):
            return []
        """The level's approvers who may still decide: `decided` holds who already did (each
        person decides once per request); a new request has none, and costs no query."""
        group = model.group(template.approval[row.level].approvers)
        members = group.members if group else frozenset()
        return sorted(members - decided - {row.requester, row.subject})

    def _decided_notice(
        self,
        model: AccessModel,
        row: RequestRow,
        template: Template,
        decider: str,
        verb: str,
        comment: str,
        level: int,
        settled: bool,
    ) -> Notice:
        w = Wording(self._core, model)
        said = f': "{clip(comment)}"' if comment else ""
        at = f"level {level + 1} of {len(template.approval)}"
        if verb == "rejected":
            title = f"Request #{row.id} rejected by {decider}"
            state = "The request is closed; no access is granted."
        elif row.status == RequestStatus.APPROVED:
            title = f"Request #{row.id} approved by {decider}"
            state = "Every level approved: the runbook runs now, and you hear when access starts."
            if row.start_at is not None:
                state = f"Every level approved: access starts at {w.when(row.start_at)}."
        elif settled:
            title = f"Request #{row.id}: level {level + 1} approved by {decider}"
            waiting = template.approval[row.level].approvers
            state = f"It now waits for level {row.level + 1} ({waiting})."
        else:
            count = sum(1 for d in row.decisions if d.level == level) + 1
            need = template.approval[level].min_approvals
            title = f"Request #{row.id}: {decider} approved ({count} of {need} at {at})"
            state = f"It needs {need - count} more approval(s) at {at}."
        summary = f"{w.who(decider)} {verb} the request {w.about(row)} at {at}{said}. {state}"
        mine = {u: w.message(row, title, summary, REQUESTER) for u in w.concerned(row)}
        if settled:
            others = [
                m
                for m in self._level_approvers_at(model, template, level)
                if m not in mine and m != decider and m not in {d.approver for d in row.decisions}
            ]
            handled = f"Request #{row.id} was {verb} by {decider}: nothing for you to do"
            for user in others:
                mine[user] = w.message(
                    row, handled, f"{summary} Your decision is no longer needed.", HANDLED
                )
        broadcast = w.message(row, title, summary, "", recipients=_roles(mine))
        broadcast.data.update({"decision": verb, "decided_by": decider, "level": level + 1})
        return Notice(NotifyEvent.REQUEST_DECIDED, row.template, row.id, None, broadcast, mine)

    @staticmethod
    def _level_approvers_at(model: AccessModel, template: Template, level: int) -> list[str]:
        group = model.group(template.approval[level].approvers)
        return sorted(group.members) if group else []

    def _grant_notice(
        self,
        s: Session,
        model: AccessModel,
        w: Wording,
        event: NotifyEvent,
        row: RequestRow,
        grant: GrantRow,
        title: str,
        summary: str,
    ) -> None:
        facts = (
            ("Grant", f"#{grant.id} (request #{row.id}, {row.template})"),
            ("User", w.who(grant.user)),
            ("Group", grant.group_name),
            ("From", w.when(grant.start_at)),
            ("Until", w.when(grant.end_at)),
            *w.gives(grant.group_name),
        )
        people = dict.fromkeys([grant.user, row.requester])
        mine = {
            u: w.message(row, title, summary, HOLDER, facts=facts, grant_id=grant.id)
            for u in people
        }
        broadcast = w.message(
            row, title, summary, "", facts=facts, grant_id=grant.id, recipients=_roles(mine)
        )
        broadcast.data.update({"grant_status": grant.status, "end_at": iso(grant.end_at)})
        self._enqueue(s, model, Notice(event, row.template, row.id, grant.id, broadcast, mine))

    def _report_notice(self, model: AccessModel, source: str, lines: list[ReportLineRow]) -> Notice:
        w = Wording(self._core, model)
        failed = [line for line in lines if line.outcome == FAILED]
        done = [line for line in lines if line.outcome != FAILED]
        event = NotifyEvent.EXPIRY_REPORT if source == EXPIRY else NotifyEvent.RECONCILE_REPORT
        what = "expiry sweep" if source == EXPIRY else "reconciler"
        verb = "ended" if source == EXPIRY else "fixed"
        failing = "FAILED to end" if source == EXPIRY else "FAILED"
        if failed:
            title = f"sekisho {what}: {len(failed)} {failing}" + (
                f", {len(done)} {verb}" if done else ""
            )
            summary = (
                f"The {what} could not get the provider to confirm {len(failed)} removal(s). "
                "Access through sekisho stopped at each grant's end regardless; sekisho retries "
                "the provider with backoff until it confirms. Check the provider."
                if source == EXPIRY
                else f"The reconciler could not make the provider agree with sekisho's grants "
                f"in {len(failed)} case(s); it tries again at its next run. Check the provider."
            )
        elif source == EXPIRY:
            title = f"sekisho {what}: {len(done)} {verb}"
            summary = f"The {what} {verb} {len(done)} grant(s); the provider confirmed each."
        else:
            title = f"sekisho {what}: {len(done)} {verb}"
            summary = (
                f"The reconciler found the provider out of step with sekisho's grants and fixed "
                f"{len(done)} case(s) (a member without a grant removed, a membership or tag "
                "repaired)."
            )
        ordered = failed + done
        shown = [w.line(line) for line in ordered[:REPORT_MAX_LINES]]
        if len(ordered) > REPORT_MAX_LINES:
            shown.append(f"... and {len(ordered) - REPORT_MAX_LINES} more (`sekisho grant list`)")
        first = next((line.request_id for line in ordered if line.request_id), None)
        link = w.request_link(first) if first else w.home()
        facts = (
            ("Failed", str(len(failed))),
            ("Ended" if source == EXPIRY else "Fixed", str(len(done))),
            ("First", w.when(lines[0].at)),
            ("Last", w.when(lines[-1].at)),
        )
        message = Message(
            event=event.value,
            title=title,
            summary=summary,
            link=link,
            link_label=f"Open request #{first}" if first else "Open sekisho",
            occurred_at=iso(self._core.now()),
            facts=facts,
            lines=tuple(shown),
            request_id=first,
            data={"failed": len(failed), "done": len(done), "source": source},
        )
        admins = model.admins()
        mine = {a: _with_role(message, ADMIN) for a in admins}
        broadcast = _with_recipients(message, tuple((a, ADMIN) for a in admins))
        return Notice(event.value, None, None, None, broadcast, mine)

    def _enqueue(self, s: Session, model: AccessModel, notice: Notice) -> None:
        channels = model.notifications.channels_for(notice.event, notice.template)
        order = order_key(notice)
        rows: list[dict[str, Any]] = []
        for channel in channels:
            if not channel.personal:
                rows.append(self._values(notice.event, channel.name, None, notice.broadcast, order))
                continue
            seen: set[str] = set()
            for user, message in notice.personal.items():
                person = model.user(user)
                address = person.email if person else None
                if address and address.lower() not in seen:
                    seen.add(address.lower())
                    rows.append(self._values(notice.event, channel.name, address, message, order))
        if rows:
            # One executemany in the caller's transaction, past the ORM's unit of work: the
            # rows are never read back here, and this is on every filing's path.
            s.execute(insert(cast(Table, NotificationRow.__table__)), rows)

    def _row(
        self, event: str, channel: str, recipient: str | None, message: Message
    ) -> NotificationRow:
        return NotificationRow(**self._values(event, channel, recipient, message))

    def _values(
        self,
        event: str,
        channel: str,
        recipient: str | None,
        message: Message,
        order: str | None = None,
    ) -> dict[str, Any]:
        now = self._core.now()
        event = str(event)
        if message.event != event:
            message = replace(message, event=event)
        return {
            "key": uuid.uuid4().hex,
            "event": event,
            "channel": channel,
            "recipient": recipient,
            "request_id": message.request_id,
            "grant_id": message.grant_id,
            "order_key": order,
            "message": message.to_json(),
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "next_at": now,
        }


def order_key(notice: Notice) -> str | None:
    """Messages about one request and its grant reach each recipient in the order they were
    written (the dispatcher holds one back while an earlier one is pending): `request:ID`.
    Reports and test messages are about no one request: no order."""
    return f"request:{notice.request_id}" if notice.request_id is not None else None


def _roles(people: dict[str, Message]) -> tuple[tuple[str, str], ...]:
    return tuple((user, message.role) for user, message in people.items())


def _with_role(message: Message, role: str) -> Message:
    return replace(message, role=role)


def _with_recipients(message: Message, recipients: tuple[tuple[str, str], ...]) -> Message:
    return replace(message, recipients=recipients)
