"""ExtendGrant: more time on an active grant, asked as a request linked to it.

The request carries `extends_grant_id` and the grant's template; it is decided as any request
of that template (or approved at once within the template's self-service `extend`). Its
approval does not make a new grant: `RunRunbook.claim` moves this grant's end in the
approval's own transaction, then the provider's TTL tag follows (docs/model.md#templatesextend).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain import drafts, extensions, timespec
from sekisho.domain.access import AccessModel, Template
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Conflict, InvalidInput, NotFound
from sekisho.domain.events import RequestAutoApproved, RequestFiled
from sekisho.domain.extensions import ExtensionDraft, ReadExtension, SoFar
from sekisho.domain.requests import RequestStatus
from sekisho.domain.step_up import StepUpAct
from sekisho.operations.requests import check_not_locked, stepped_up
from sekisho.operations.runbook import RunRunbook
from sekisho.ports import ModelSource
from sekisho.services import permissions
from sekisho.store import grants, requests
from sekisho.store.tables import GrantRow, RequestRow
from sekisho.store.unit_of_work import Store

# An extension still on its way: pending, or approved and not yet settled.
_OPEN = (
    RequestStatus.PENDING_APPROVAL,
    RequestStatus.APPROVED,
    RequestStatus.SCHEDULED,
    RequestStatus.IN_PROGRESS,
)


class ExtendGrant:
    """The holder of an active grant (or an admin) asks for a later end."""

    def __init__(
        self, store: Store, clock: Clock, models: ModelSource, runbook: RunRunbook
    ) -> None:
        self._store, self._clock, self._models, self._runbook = store, clock, models, runbook

    def execute(self, actor: Actor, grant_id: int, draft: ExtensionDraft) -> int:
        """File the extension; a self-service one takes effect before this returns."""
        now = self._clock.now()
        with self._store.write() as uow:
            s = uow.session
            model_id, model = self._models.current(s)
            grant = _extendable(s, model, actor, grant_id, now)
            original = s.get_one(RequestRow, grant.request_id)
            template = _template_of(model, original, grant)
            check_not_locked(s, model, (actor.name, grant.user, grant.group_name), now)
            _check_none_open(s, grant.id)
            tz = timespec.zone(model.settings.timezone)
            so_far = _so_far(s, grant, original)
            read = extensions.read_extension(template, grants.window(grant), draft, so_far, tz)
            where = f"the extension of grant #{grant.id}"
            stepped_up(s, model, template, StepUpAct.REQUEST, actor, now, where)
            row = _extension_request(model, model_id, actor, original, grant, read, now)
            s.add(row)
            s.flush()
            job = None
            if read.self_service is not None:
                # Approved before it is on record as filed, so its approvers are not asked.
                requests.move(row, RequestStatus.APPROVED, now)
            summary = f"{grant.user} in {grant.group_name}: grant #{grant.id} {read.summary}"
            uow.record(RequestFiled(now, row.id, actor, summary))
            if read.self_service is not None:
                uow.record(RequestAutoApproved(now, row.id, read.self_service))
                job = self._runbook.claim(uow, row)
            request_id = row.id
        if job is not None:
            self._runbook.run(job)
        return request_id


def _extendable(
    s: Session, model: AccessModel, actor: Actor, grant_id: int, now: datetime
) -> GrantRow:
    """The grant, locked (a second extension waits, then sees the first), if `actor` holds
    it or is an admin, and it is active now."""
    row = grants.lock(s, grant_id)
    if row is None or not (row.user == actor.name or permissions.is_admin(model, actor)):
        raise NotFound(f"no grant #{grant_id}")
    extensions.check_extendable(grants.window(row), now)
    return row


def _template_of(model: AccessModel, original: RequestRow, grant: GrantRow) -> Template:
    """The template the grant was made with, as the model says it now, and the holder still
    eligible under it: an extension is decided by the rules a new request would meet."""
    template = model.template(original.template)
    group = model.group(grant.group_name)
    if template is None or group is None:
        raise InvalidInput.one(
            "grant",
            "unknown_template",
            f"grant #{grant.id} was made with {original.template}, which the access model "
            "no longer has; request access anew",
        )
    drafts.check_eligible(model, template, group, grant.user)
    return template


def _check_none_open(s: Session, grant_id: int) -> None:
    """One extension of a grant at a time: a second would be decided against an end the
    first is about to move."""
    existing = s.scalar(
        select(RequestRow.id).where(
            RequestRow.extends_grant_id == grant_id, RequestRow.status.in_(_OPEN)
        )
    )
    if existing is not None:
        raise Conflict(f"request #{existing} to extend grant #{grant_id} is already open")


def _so_far(s: Session, grant: GrantRow, original: RequestRow) -> SoFar:
    """The grant's extensions in force: how many, and how far they moved its end (from the
    end its own request set at activation)."""
    times = s.scalar(
        select(func.count(RequestRow.id)).where(
            RequestRow.extends_grant_id == grant.id,
            RequestRow.status == RequestStatus.SUCCEEDED,
        )
    )
    first_end = original.end_at or grant.end_at
    return SoFar(times or 0, max(grant.end_at - first_end, timedelta(0)))


def _extension_request(
    model: AccessModel,
    model_id: int,
    actor: Actor,
    original: RequestRow,
    grant: GrantRow,
    read: ReadExtension,
    now: datetime,
) -> RequestRow:
    """The extension as a request: the grant's template, group and change information, the
    new end, and a deadline no later than the current end (after it, there is nothing left
    to extend: the request expires undecided and the grant ends as it would have)."""
    return RequestRow(
        template=original.template,
        action=original.action,
        requester=actor.name,
        subject=grant.user,
        group_name=grant.group_name,
        start_at=None,
        end_at=read.new_end,
        duration_s=None,
        reason=read.reason,
        change_info=dict(original.change_info),
        params=dict(original.params),
        status=RequestStatus.PENDING_APPROVAL,
        level=0,
        created_at=now,
        updated_at=now,
        decide_by=min(now + model.settings.approval_timeout, grant.end_at),
        model_id=model_id,
        extends_grant_id=grant.id,
    )
