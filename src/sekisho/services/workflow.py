"""Requests: file, approve, reject, cancel, read. The one write path for every interface."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from sekisho.domain import timespec
from sekisho.domain.access import AccessModel, Group, Template, TemplateAction
from sekisho.domain.actor import Actor
from sekisho.domain.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidInput,
    NotEligible,
    NotFound,
)
from sekisho.domain.grants import GrantStatus
from sekisho.domain.requests import (
    Decision,
    RecordedDecision,
    RequestStatus,
    decide,
)
from sekisho.domain.text import LONG_TEXT, SHORT_TEXT, check_text
from sekisho.services import policy, timeline
from sekisho.services.audit import AuditEvent
from sekisho.services.request_state import move
from sekisho.services.views import RequestSummary, RequestView
from sekisho.store.tables import DecisionRow, GrantRow, RequestRow, TimelineRow

if TYPE_CHECKING:
    from sekisho.services.core import Core

# A start a little in the past (clock skew, a slow form) means "now".
START_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class RequestDraft:
    """A request as a person typed it. Times are text; the server reads them in its zone."""

    template: str
    group: str
    reason: str
    user: str | None = None
    until: str | None = None
    duration: str | None = None
    start: str | None = None
    info: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Window:
    """When access would hold. Without a start, a duration counts from the activation."""

    start_at: datetime | None
    end_at: datetime | None
    duration: timedelta | None = None


@dataclass(frozen=True)
class RequestQuery:
    mine: bool = False  # filed by me or granting me
    to_approve: bool = False  # waiting for a decision I may give
    status: RequestStatus | None = None
    limit: int = 200


class WorkflowService:
    def __init__(self, core: Core) -> None:
        self._core = core

    # -- filing ---------------------------------------------------------------------------

    def file(self, actor: Actor, draft: RequestDraft) -> RequestView:
        core = self._core
        now = core.now()
        with core.db.write() as s:
            model_id, model = core.models.current(s)
            template, group, subject = self._resolve(model, actor, draft)
            window = self._window(model, template, draft, now)
            info = self._change_info(template, draft.info)
            params = self._params(template, draft.params)
            reason = check_text("reason", draft.reason, max_length=LONG_TEXT, multiline=True)
            if not reason:
                raise InvalidInput.one("reason", "required", "say why you need this access")
            self._check_eligible(model, template, group, subject)
            self._check_no_duplicate(s, subject, group.name, template)
            if template.action is TemplateAction.REMOVE:
                self._check_something_to_remove(s, subject, group.name, now)

            row = RequestRow(
                template=template.name,
                action=template.action.value,
                requester=actor.name,
                subject=subject,
                group_name=group.name,
                start_at=window.start_at,
                end_at=window.end_at,
                duration_s=int(window.duration.total_seconds()) if window.duration else None,
                reason=reason,
                change_info=info,
                params=params,
                status=RequestStatus.PENDING_APPROVAL,
                level=0,
                created_at=now,
                updated_at=now,
                decide_by=self._decide_by(model, window, now),
                model_id=model_id,
            )
            s.add(row)
            s.flush()
            what = f"{subject} in {group.name}"
            if window.end_at:
                what += f" until {timespec.iso(window.end_at)}"
            elif window.duration:
                what += f" for {timespec.format_duration(window.duration)} after approval"
            timeline.note(s, row.id, now, "filed", actor.name, f"filed: {what}")
            core.audit(s, self._event("request.filed", actor, row))
            core.outbox.request_filed(s, model, row)
            job = None
            if template.auto_approve:
                move(row, RequestStatus.APPROVED, now)
                timeline.note(s, row.id, now, "approved", "sekisho", "auto-approved by template")
                core.audit(s, self._event("request.approved", Actor.system("workflow"), row))
                job = core.runbook.claim(s, row)
            request_id = row.id

        if job is not None:
            core.runbook.run(job)
        core.publish("request.filed", request_id=request_id, user=subject, group=group.name)
        return self.get(actor, request_id)

    def _resolve(
        self, model: AccessModel, actor: Actor, draft: RequestDraft
    ) -> tuple[Template, Group, str]:
        problems: list[FieldProblem] = []
        template = model.template(draft.template)
        if template is None:
            problems.append(
                FieldProblem("template", "unknown_template", f"no template {draft.template!r}")
            )
        group = model.group(draft.group)
        if group is None:
            problems.append(FieldProblem("group", "unknown_group", f"no group {draft.group!r}"))
        elif not group.is_work:
            problems.append(
                FieldProblem(
                    "group",
                    "work_group_only",
                    f"{group.name} is a standing group; requests fill only work groups",
                )
            )
        subject = draft.user or actor.name
        if model.user(subject) is None:
            problems.append(FieldProblem("user", "unknown_user", f"no user {subject!r}"))
        if problems:
            raise InvalidInput(problems)
        assert template is not None
        assert group is not None
        if subject != actor.name and not policy.is_admin(model, actor):
            raise Forbidden("you may file requests only for yourself (admins may file for others)")
        return template, group, subject

    def _window(
        self, model: AccessModel, template: Template, draft: RequestDraft, now: datetime
    ) -> Window:
        if template.action is TemplateAction.REMOVE:
            for name, value in (("until", draft.until), ("for", draft.duration)):
                if value:
                    raise InvalidInput.one(
                        name, "not_applicable", "a remove request ends access now; give no end"
                    )
            if draft.start:
                raise InvalidInput.one("start", "not_applicable", "a remove request has no start")
            return Window(None, None)
        tz = timespec.zone(model.settings.timezone)
        if bool(draft.until) == bool(draft.duration):
            raise InvalidInput.one(
                "until", "one_of_until_or_for", "give exactly one of --until TIME or --for DURATION"
            )
        start = now
        if draft.start:
            start = timespec.parse_instant(draft.start, "start", tz)
            if start < now - START_SKEW:
                raise InvalidInput.one("start", "in_future", "the start is in the past")
            start = max(start, now)
        duration = None
        if draft.until:
            end = timespec.parse_instant(draft.until, "until", tz)
            field_name = "until"
        else:
            duration = timespec.parse_duration(draft.duration or "", "for")
            end = start + duration
            field_name = "for"
        if end <= now:
            raise InvalidInput.one(
                field_name, "in_future", f"the end {timespec.iso(end)} is not in the future"
            )
        if end <= start:
            raise InvalidInput.one("start", "start_before_end", "the start must be before the end")
        if end - start > template.max_duration:
            limit = timespec.format_duration(template.max_duration)
            raise InvalidInput.one(
                field_name,
                "max_duration",
                f"{template.name} grants at most {limit}; asked for "
                f"{timespec.format_duration(end - start)}",
            )
        # A start that is already here means "now", exactly as if none was given: a start
        # decides when the request stops waiting for approval, so keeping it would make the
        # request expire undecided the moment it was filed.
        if start <= now and duration is not None:
            # "--for 2h" asks for two hours of access: they count from the activation, not
            # from the filing, so time spent waiting for an approver is not lost.
            return Window(None, None, duration)
        return Window(start if start > now else None, end)

    @staticmethod
    def _change_info(template: Template, given: Mapping[str, str]) -> dict[str, str]:
        sections = {c.name: c for c in template.change_info}
        problems: list[FieldProblem] = []
        info: dict[str, str] = {}
        for key, value in given.items():
            if key not in sections:
                known = ", ".join(sections) or "none"
                problems.append(
                    FieldProblem(
                        f"info.{key[:40]}",
                        "unknown_section",
                        f"{template.name} has no section {key[:40]!r} (sections: {known})",
                    )
                )
                continue
            info[key] = check_text(f"info.{key}", value, max_length=LONG_TEXT, multiline=True)
        for section in template.change_info:
            if section.required and not info.get(section.name):
                problems.append(
                    FieldProblem(f"info.{section.name}", "required", f"{section.title} is required")
                )
        if problems:
            raise InvalidInput(problems)
        return info

    @staticmethod
    def _params(template: Template, given: Mapping[str, str]) -> dict[str, str]:
        declared = {p.name: p for p in template.parameters}
        problems: list[FieldProblem] = []
        params: dict[str, str] = {}
        for key, value in given.items():
            spec = declared.get(key)
            if spec is None:
                problems.append(
                    FieldProblem(
                        f"param.{key[:40]}", "unknown_parameter", f"{template.name} has no {key!r}"
                    )
                )
                continue
            text = check_text(f"param.{key}", value, max_length=SHORT_TEXT)
            if spec.pattern and not re.fullmatch(spec.pattern, text):
                problems.append(
                    FieldProblem(f"param.{key}", "pattern", f"must match {spec.pattern}")
                )
            params[key] = text
        for spec in template.parameters:
            if spec.required and not params.get(spec.name):
                problems.append(
                    FieldProblem(f"param.{spec.name}", "required", f"{spec.name} is required")
                )
        if problems:
            raise InvalidInput(problems)
        return params

    @staticmethod
    def _check_eligible(model: AccessModel, template: Template, group: Group, user: str) -> None:
        mine = {g.name for g in model.standing_groups_of(user)}
        allowed = template.requestable_groups(mine)
        if group.name not in allowed:
            options = ", ".join(sorted(allowed)) or "none"
            raise NotEligible(
                f"{user} may not request {group.name} with {template.name} "
                f"(groups {user} may request: {options})"
            )

    @staticmethod
    def _check_no_duplicate(session: Session, user: str, group: str, template: Template) -> None:
        _one_filing_at_a_time(session, user, group, template.action.value)
        open_statuses = (RequestStatus.PENDING_APPROVAL, RequestStatus.APPROVED)
        existing = session.scalar(
            select(RequestRow.id).where(
                RequestRow.subject == user,
                RequestRow.group_name == group,
                RequestRow.action == template.action.value,
                RequestRow.status.in_(open_statuses),
            )
        )
        if existing is not None:
            raise Conflict(f"request #{existing} for {user} in {group} is already open")

    @staticmethod
    def _check_something_to_remove(session: Session, user: str, group: str, now: datetime) -> None:
        held = session.scalar(
            select(GrantRow.id).where(
                GrantRow.user == user,
                GrantRow.group_name == group,
                GrantRow.status == GrantStatus.ACTIVE,
                GrantRow.end_at > now,
            )
        )
        if held is None:
            raise InvalidInput.one(
                "group", "no_active_grant", f"{user} holds no active grant in {group}"
            )

    @staticmethod
    def _decide_by(model: AccessModel, window: Window, now: datetime) -> datetime:
        limit = now + model.settings.approval_timeout
        deadline = window.start_at or window.end_at
        return min(limit, deadline) if deadline else limit

    # -- deciding -------------------------------------------------------------------------

    def approve(self, actor: Actor, request_id: int, comment: str = "") -> RequestView:
        return self._decide(actor, request_id, Decision.APPROVE, comment)

    def reject(self, actor: Actor, request_id: int, comment: str) -> RequestView:
        return self._decide(actor, request_id, Decision.REJECT, comment)

    def _decide(
        self, actor: Actor, request_id: int, decision: Decision, comment: str
    ) -> RequestView:
        core = self._core
        comment = check_text("comment", comment or "", max_length=LONG_TEXT, multiline=True)
        if decision is Decision.REJECT and not comment:
            raise InvalidInput.one("comment", "required", "say why you reject the request")
        now = core.now()
        with core.db.write() as s:
            model = core.models.model(s)
            row = self._lock(s, request_id)
            if not policy.may_view_request(model, actor, row):
                raise NotFound(f"no request #{request_id}")
            template = model.template(row.template)
            if template is None or row.level >= len(template.approval):
                raise Conflict(f"template {row.template} changed; the request cannot be decided")
            status = RequestStatus(row.status)
            if status is RequestStatus.PENDING_APPROVAL and now >= row.decide_by:
                raise Conflict(
                    f"request #{row.id} expired undecided at {timespec.iso(row.decide_by)}"
                )
            outcome = decide(
                template=template,
                status=status,
                level=row.level,
                requester=row.requester,
                subject=row.subject,
                approver=actor.name,
                approver_groups=frozenset(g.name for g in model.standing_groups_of(actor.name)),
                decisions=[_recorded(d) for d in row.decisions],
                decision=decision,
            )
            s.add(
                DecisionRow(
                    request_id=row.id,
                    level=row.level,
                    approver=actor.name,
                    decision=decision.value,
                    comment=comment,
                    decided_at=now,
                )
            )
            verb = "approved" if decision is Decision.APPROVE else "rejected"
            said = f": {comment}" if comment else ""
            # 1-based, as people count; taken before the outcome moves the request on a level.
            decided_level = row.level + 1
            timeline.note(
                s, row.id, now, verb, actor.name, f"{verb} at level {decided_level}{said}"
            )
            if outcome.new_status is not status:  # a level passed, the request stays pending
                move(row, outcome.new_status, now)
            row.level, row.updated_at = outcome.new_level, now
            if outcome.new_status is RequestStatus.APPROVED:
                timeline.note(s, row.id, now, "approved", "sekisho", "all approval levels passed")
            core.audit(
                s,
                self._event(
                    f"request.{verb}", actor, row, comment=comment[:500], level=decided_level
                ),
            )
            core.outbox.request_decided(s, model, row, actor.name, verb, comment, decided_level - 1)
            # Claimed in this transaction: nobody else can run it, and nobody sees it waiting.
            job = core.runbook.claim(s, row) if row.status == RequestStatus.APPROVED else None
            subject, group = row.subject, row.group_name

        if job is not None:
            core.runbook.run(job)
        core.publish("request.decided", request_id=request_id, user=subject, group=group)
        return self.get(actor, request_id)

    def cancel(self, actor: Actor, request_id: int) -> RequestView:
        core = self._core
        now = core.now()
        with core.db.write() as s:
            model = core.models.model(s)
            row = self._lock(s, request_id)
            if not policy.may_view_request(model, actor, row):
                raise NotFound(f"no request #{request_id}")
            if actor.name != row.requester:
                raise Forbidden("only the requester may cancel a request")
            status = RequestStatus(row.status)
            if status is not RequestStatus.PENDING_APPROVAL:
                raise Conflict(f"request #{row.id} is {status.value}; only pending ones cancel")
            move(row, RequestStatus.CANCELLED, now)
            timeline.note(s, row.id, now, "cancelled", actor.name, "cancelled by the requester")
            core.audit(s, self._event("request.cancelled", actor, row))
            core.outbox.request_closed(s, row, "cancelled")
        core.publish("request.decided", request_id=request_id)
        return self.get(actor, request_id)

    def expire_undecided(self, request_id: int) -> bool:
        """Called by the sweeper when nobody decided in time."""
        core = self._core
        now = core.now()
        with core.db.write() as s:
            row = self._lock(s, request_id)
            if row.status != RequestStatus.PENDING_APPROVAL or now < row.decide_by:
                return False
            move(row, RequestStatus.EXPIRED_UNAPPROVED, now)
            timeline.note(
                s, row.id, now, "expired", "sekisho", "nobody decided before the deadline"
            )
            core.audit(s, self._event("request.expired", Actor.system("scheduler"), row))
            core.outbox.request_closed(s, row, "expired")
        core.publish("request.decided", request_id=request_id)
        return True

    # -- reading --------------------------------------------------------------------------

    def get(self, actor: Actor, request_id: int) -> RequestView:
        core = self._core
        with core.db.read() as s:
            model = core.models.model(s)
            row = s.get(RequestRow, request_id)
            if row is None or not policy.may_view_request(model, actor, row):
                raise NotFound(f"no request #{request_id}")
            entries = list(
                s.scalars(
                    select(TimelineRow)
                    .where(TimelineRow.request_id == request_id)
                    .order_by(TimelineRow.id)
                )
            )
            grant = s.scalar(select(GrantRow).where(GrantRow.request_id == request_id))
            return RequestView.build(row, model, entries, grant, core.now())

    def list_requests(self, actor: Actor, query: RequestQuery) -> list[RequestSummary]:
        core = self._core
        with core.db.read() as s:
            model = core.models.model(s)
            stmt = select(RequestRow).order_by(RequestRow.id.desc())
            mine = (RequestRow.requester == actor.name) | (RequestRow.subject == actor.name)
            approvable = [
                t.name
                for t in model.templates
                if policy.may_approve_some_level(model, actor, t.name)
            ]
            if query.to_approve:
                stmt = stmt.where(
                    RequestRow.status == RequestStatus.PENDING_APPROVAL,
                    RequestRow.template.in_(approvable),
                    ~mine,
                )
            elif query.mine:
                stmt = stmt.where(mine)
            elif not policy.is_auditor(model, actor):
                stmt = stmt.where(mine | RequestRow.template.in_(approvable))
            if query.status is not None:
                stmt = stmt.where(RequestRow.status == query.status)
            limit = max(1, min(query.limit, 1000))
            rows = list(s.scalars(stmt.limit(limit)))
            if query.to_approve:
                rows = [r for r in rows if self._awaits(model, actor, r)]
            return [RequestSummary.of(r) for r in rows]

    @staticmethod
    def _awaits(model: AccessModel, actor: Actor, row: RequestRow) -> bool:
        """Whether `actor` could decide the request's current level now."""
        template = model.template(row.template)
        if template is None or row.level >= len(template.approval):
            return False
        if actor.name in (row.requester, row.subject):
            return False
        if any(d.approver == actor.name for d in row.decisions):
            return False
        mine = {g.name for g in model.standing_groups_of(actor.name)}
        return template.approval[row.level].approvers in mine

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _lock(session: Session, request_id: int) -> RequestRow:
        row = session.execute(
            select(RequestRow).where(RequestRow.id == request_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no request #{request_id}")
        return row

    @staticmethod
    def _event(action: str, actor: Actor, row: RequestRow, **detail: str | int) -> AuditEvent:
        base: dict[str, str | int | bool | None] = {
            "template": row.template,
            "group": row.group_name,
            "status": row.status,
        }
        if row.end_at is not None:
            base["end"] = timespec.iso(row.end_at)
        elif row.duration_s:
            base["duration"] = timespec.format_duration(timedelta(seconds=row.duration_s))
        if row.start_at is not None:
            base["start"] = timespec.iso(row.start_at)
        base.update(detail)
        return AuditEvent(
            action, actor.name, actor.source, subject=row.subject, request_id=row.id, detail=base
        )


def _recorded(row: DecisionRow) -> RecordedDecision:
    return RecordedDecision(
        level=row.level,
        approver=row.approver,
        decision=Decision(row.decision),
        comment=row.comment,
        at=row.decided_at,
    )


def _one_filing_at_a_time(session: Session, user: str, group: str, action: str) -> None:
    """Serialise filings for one (subject, group, action) until this transaction ends.

    Two identical filings at once would each find no open request and both insert one. On
    PostgreSQL a transaction-scoped advisory lock makes the second wait for the first to
    commit; its check (a new snapshot under READ COMMITTED) then sees the first's request.
    SQLite's writers are serialised already. The key is namespaced so it never meets the
    membership locks (`services.locks`), which are held across provider calls.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"request-filing\0{user}\0{group}\0{action}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
