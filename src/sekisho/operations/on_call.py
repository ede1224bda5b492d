"""PassOnCall: an approval level passes by itself while the person it grants is on call in
the level's PagerDuty schedule (`auto_approve: {on_call: SCHEDULE}`).

PagerDuty is asked outside any transaction; the level then passes in one unit of work that
re-reads the request under its lock (it must still wait at that level), as a decision by
`sekisho:on-call` whose comment names the schedule and the shift. Not on call, no e-mail to
find them by, or PagerDuty unable to say: the level waits for its approvers, and the timeline
says why. Never an approval by failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel, OnCall, PagerDutySettings
from sekisho.domain.actor import Actor
from sekisho.domain.events import OnCallChecked, RequestDecided
from sekisho.domain.on_call import OnCallEntry, OnCallUnavailable, Shift, shift_of
from sekisho.domain.requests import ApprovalDecision, RequestStatus, pass_level
from sekisho.operations.runbook import Job, RunRunbook
from sekisho.ports import ModelSource
from sekisho.store import requests
from sekisho.store.tables import DecisionRow, RequestRow
from sekisho.store.unit_of_work import Store, UnitOfWork

ON_CALL = Actor.system("on-call")


class OnCallSource(Protocol):
    def entries(
        self, settings: PagerDutySettings, schedule: str, at: datetime
    ) -> list[OnCallEntry]: ...


@dataclass(frozen=True)
class _Ask:
    request_id: int
    level: int
    rule: OnCall
    email: str | None
    settings: PagerDutySettings


class PassOnCall:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        runbook: RunRunbook,
        pager: OnCallSource,
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._runbook, self._pager = runbook, pager

    def execute(self, request_id: int) -> None:
        """Pass every level in a row that the person is on call for, from the one waiting."""
        if self._models.model().pagerduty is None:
            return  # no level anywhere passes on call: not even a read
        while (ask := self._waiting(request_id)) is not None:
            shift, why = self._asked(ask)
            if not self._record(ask, shift, why):
                return

    def _waiting(self, request_id: int) -> _Ask | None:
        with self._store.read() as s:
            model: AccessModel = self._models.model(s)
            row = s.get(RequestRow, request_id)
            if row is None or row.status != RequestStatus.PENDING_APPROVAL:
                return None
            template = model.template(row.template)
            if template is None or model.pagerduty is None or row.level >= len(template.approval):
                return None
            rule = template.approval[row.level].on_call
            if rule is None:
                return None
            person = model.user(row.subject)
            email = person.email if person is not None else None
            return _Ask(request_id, row.level, rule, email, model.pagerduty)

    def _asked(self, ask: _Ask) -> tuple[Shift | None, str]:
        if not ask.email:
            return None, "the model has no e-mail to find them by in PagerDuty"
        try:
            entries = self._pager.entries(ask.settings, ask.rule.schedule, self._clock.now())
        except OnCallUnavailable as exc:
            return None, f"PagerDuty could not say ({exc})"
        shift = shift_of(ask.rule, ask.email, entries)
        return shift, "" if shift else f"not on call now in PagerDuty schedule {ask.rule.schedule}"

    def _record(self, ask: _Ask, shift: Shift | None, why: str) -> bool:
        """The level passed (True), or the reason it waits recorded (False)."""
        job = None
        with self._store.write() as uow:
            row = requests.lock(uow.session, ask.request_id)
            if row.status != RequestStatus.PENDING_APPROVAL or row.level != ask.level:
                return False  # decided meanwhile: nothing of ours to record
            now = self._clock.now()
            if shift is None:
                uow.record(OnCallChecked(now, row.id, ask.level, ask.rule.schedule, why))
                return False
            job = self._pass(uow, row, shift, now)
        if job is not None:
            self._runbook.run(job)
        return True

    def _pass(self, uow: UnitOfWork, row: RequestRow, shift: Shift, now: datetime) -> Job | None:
        template = self._models.model(uow.session).template(row.template)
        assert template is not None  # it was there when asked, under the same version
        level, comment = row.level, shift.describe()
        uow.session.add(
            DecisionRow(
                request_id=row.id,
                level=level,
                approver=ON_CALL.name,
                decision=ApprovalDecision.APPROVE.value,
                comment=comment,
                decided_at=now,
            )
        )
        outcome = pass_level(template, level)
        if outcome.new_status is not RequestStatus.PENDING_APPROVAL:
            requests.move(row, outcome.new_status, now)
        row.level, row.updated_at = outcome.new_level, now
        final = outcome.new_status is not RequestStatus.PENDING_APPROVAL
        uow.record(RequestDecided(now, row.id, ON_CALL, True, level, comment, final))
        return self._runbook.claim(uow, row) if row.status == RequestStatus.APPROVED else None
