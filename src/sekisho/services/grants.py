"""Grants: list, release, revoke, and the one way any grant ends.

Ending is two-phase. First the grant turns `ending` in the store, which ends access at once
(decisions only honour `active` grants) and tells subscribers (the gateway cuts sessions).
Then the provider removes the membership; until it confirms, the grant stays `ending` and is
retried with backoff. It is never marked ended before the provider confirmed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from sekisho.domain.actor import Actor
from sekisho.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, ProviderFailure
from sekisho.domain.grants import EndReason, GrantStatus, ended_status
from sekisho.domain.text import LONG_TEXT, check_text
from sekisho.domain.timespec import backoff, iso
from sekisho.services import membership, permissions, timeline
from sekisho.services.audit import AuditEvent
from sekisho.services.membership import StepOutcome
from sekisho.services.views import GrantView
from sekisho.store.tables import GrantRow

if TYPE_CHECKING:
    from sekisho.services.core import Core

_ENDABLE = (GrantStatus.ACTIVE, GrantStatus.ENDING)
# Ended before their time: role credentials issued under them must stop working now.
_EARLY = frozenset({EndReason.RELEASED, EndReason.REVOKED, EndReason.REMOVED})


@dataclass
class EndResult:
    ended: list[int] = field(default_factory=list)  # provider confirmed
    pending: list[int] = field(default_factory=list)  # access over; provider will be retried
    errors: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Ending:
    id: int
    request_id: int
    user: str
    group: str
    reason: EndReason


class GrantService:
    def __init__(self, core: Core) -> None:
        self._core = core

    # -- reading --------------------------------------------------------------------------

    def list_grants(
        self, actor: Actor, *, active_only: bool = False, user: str | None = None, limit: int = 500
    ) -> list[GrantView]:
        core = self._core
        now = core.now()
        with core.db.read() as s:
            model = core.models.model(s)
            stmt = select(GrantRow).order_by(GrantRow.id.desc())
            if not permissions.is_auditor(model, actor):
                if user not in (None, actor.name):
                    raise Forbidden("you may list only your own grants")
                user = actor.name
            if user is not None:
                stmt = stmt.where(GrantRow.user == user)
            if active_only:
                stmt = stmt.where(GrantRow.status == GrantStatus.ACTIVE, GrantRow.end_at > now)
            rows = s.scalars(stmt.limit(max(1, min(limit, 5000))))
            views = [GrantView.of(r, now) for r in rows]
        return [v for v in views if v.active] if active_only else views

    def get(self, actor: Actor, grant_id: int) -> GrantView:
        core = self._core
        with core.db.read() as s:
            model = core.models.model(s)
            row = s.get(GrantRow, grant_id)
            if row is None or not (row.user == actor.name or permissions.is_auditor(model, actor)):
                raise NotFound(f"no grant #{grant_id}")
            return GrantView.of(row, core.now())

    # -- ending early ---------------------------------------------------------------------

    def release(self, actor: Actor, grant_id: int) -> GrantView:
        """The holder is done: end the grant now."""
        row = self._endable(actor, grant_id)
        if row.user != actor.name:
            raise Forbidden("only the holder may release a grant; admins revoke")
        self.end([grant_id], EndReason.RELEASED, actor, note="released by the holder")
        return self.get(actor, grant_id)

    def revoke(self, actor: Actor, grant_id: int, reason: str) -> GrantView:
        reason = check_text("reason", reason or "", max_length=LONG_TEXT, multiline=True)
        with self._core.db.read() as s:
            permissions.require_admin(self._core.models.model(s), actor, "revoke grants")
        if not reason:
            raise InvalidInput.one("reason", "required", "say why the grant is revoked")
        self._endable(actor, grant_id)
        self.end([grant_id], EndReason.REVOKED, actor, note=reason)
        return self.get(actor, grant_id)

    def _endable(self, actor: Actor, grant_id: int) -> GrantRow:
        with self._core.db.read() as s:
            model = self._core.models.model(s)
            row = s.get(GrantRow, grant_id)
            if row is None or not (row.user == actor.name or permissions.is_admin(model, actor)):
                raise NotFound(f"no grant #{grant_id}")
            if row.status != GrantStatus.ACTIVE or row.end_at <= self._core.now():
                raise Conflict(f"grant #{grant_id} is {row.status}, not active")
            return row

    # -- the one way a grant ends ----------------------------------------------------------

    def end(
        self,
        grant_ids: list[int],
        reason: EndReason,
        actor: Actor,
        *,
        note: str = "",
        also_on: int | None = None,
    ) -> EndResult:
        """End these grants: access stops now; the provider follows, or is retried.

        `also_on` names another request (a remove request) whose timeline shows the steps too.
        Grants already `ending` keep their first reason (this is a retry).
        """
        result = EndResult()
        endings = self._begin(grant_ids, reason, actor, note)
        by_pair: dict[tuple[str, str], list[_Ending]] = defaultdict(list)
        for ending in endings:
            by_pair[(ending.user, ending.group)].append(ending)
        for (user, group), batch in by_pair.items():
            self._finish(user, group, batch, actor, also_on, result)
        return result

    def _begin(
        self, grant_ids: list[int], reason: EndReason, actor: Actor, note: str
    ) -> list[_Ending]:
        core = self._core
        now = core.now()
        started: list[_Ending] = []
        newly_ended: list[_Ending] = []
        with core.db.write() as s:
            rows = s.scalars(
                select(GrantRow)
                .where(GrantRow.id.in_(grant_ids), GrantRow.status.in_(_ENDABLE))
                .order_by(GrantRow.id)
                .with_for_update()
            )
            for row in rows:
                first_time = row.status == GrantStatus.ACTIVE
                if first_time:
                    row.status = GrantStatus.ENDING
                    row.end_reason, row.ended_by, row.end_note = reason, actor.name, note[:2000]
                    timeline.note(
                        s,
                        row.request_id,
                        now,
                        "grant.ending",
                        actor.name,
                        f"access to {row.group_name} ended ({_describe(reason, note)})",
                    )
                    core.outbox.grant_ended(s, row)
                # In flight: if this process dies here, the sweeper takes over after the lease.
                row.retry_at = now + core.settings.ending_lease
                ending = _Ending(
                    row.id,
                    row.request_id,
                    row.user,
                    row.group_name,
                    EndReason(row.end_reason or EndReason.EXPIRED),
                )
                started.append(ending)
                if first_time:
                    newly_ended.append(ending)
        for ending in newly_ended:
            core.publish(
                "grant.ended",
                request_id=ending.request_id,
                grant_id=ending.id,
                user=ending.user,
                group=ending.group,
                data={"reason": _describe(reason, note)[:300]},
            )
        return started

    def _finish(
        self,
        user: str,
        group: str,
        batch: list[_Ending],
        actor: Actor,
        also_on: int | None,
        result: EndResult,
    ) -> None:
        core = self._core
        steps: list[tuple[StepOutcome, datetime]] = []
        with core.locks.hold(user, group):
            confirmed = membership.converge(
                core, user, group, lambda outcome: steps.append((outcome, core.now()))
            )
            if confirmed and any(e.reason in _EARLY for e in batch):
                confirmed = self._revoke_role_sessions(user, group, steps)
        outputs = [f"{o.step}: {o.output}" for o, _ in steps if o.ok]
        failures = [f"{o.step}: {o.output}" for o, _ in steps if not o.ok]
        # The steps' timeline entries and the outcome land in one transaction: an ending
        # costs one commit here, not one per step (a mass expiry ends thousands at once).
        now = core.now()
        with core.db.write() as s:
            targets = {e.request_id for e in batch} | ({also_on} if also_on else set())
            for outcome, at in steps:
                for request_id in sorted(targets):
                    timeline.note(
                        s,
                        request_id,
                        at,
                        f"step:{outcome.step}",
                        actor.name,
                        f"{outcome.step}: {outcome.output}",
                        status="ok" if outcome.ok else "failed",
                    )
            for ending in batch:
                row = s.get_one(GrantRow, ending.id, with_for_update=True)
                if row.status != GrantStatus.ENDING:
                    continue  # another runner finished it meanwhile
                if confirmed:
                    row.status = ended_status(ending.reason)
                    row.ended_at, row.retry_at, row.last_error = now, None, None
                    result.ended.append(row.id)
                    timeline.note(
                        s,
                        row.request_id,
                        now,
                        "grant.ended",
                        actor.name,
                        f"grant #{row.id} {row.status}; the provider confirmed",
                    )
                    core.audit(s, _ended_event(row, actor, "; ".join(outputs)))
                    core.outbox.ending_outcome(s, row, actor, confirmed=True)
                else:
                    row.end_attempts += 1
                    row.retry_at = now + self._backoff(row.end_attempts)
                    row.last_error = "; ".join(failures)[:2000]
                    result.pending.append(row.id)
                    result.errors[row.id] = row.last_error
                    core.audit(s, _end_failed_event(row, actor))
                    core.outbox.ending_outcome(s, row, actor, confirmed=False)

    def _revoke_role_sessions(
        self, user: str, group: str, steps: list[tuple[StepOutcome, datetime]]
    ) -> bool:
        """An early end also ends role credentials issued before it (AWS): the user's older
        sessions of the group's roles are denied. Unconfirmed, the ending is retried."""
        core = self._core
        try:
            done = core.broker.revoke_role_sessions(user, group, cutoff=core.now())
        except ProviderFailure as exc:
            steps.append((StepOutcome("revoke_role_sessions", False, exc.message), core.now()))
            return False
        for output in done:
            steps.append((StepOutcome("revoke_role_sessions", True, output), core.now()))
        return True

    def _backoff(self, attempts: int) -> timedelta:
        settings = self._core.settings
        return backoff(attempts, settings.end_retry_first, settings.end_retry_max)

    def due(self, now: datetime, limit: int = 500) -> tuple[list[int], list[int]]:
        """Grants whose end has come (to expire) and stuck endings whose retry is due."""
        with self._core.db.read() as s:
            expiring = list(
                s.scalars(
                    select(GrantRow.id)
                    .where(GrantRow.status == GrantStatus.ACTIVE, GrantRow.end_at <= now)
                    .order_by(GrantRow.end_at)
                    .limit(limit)
                )
            )
            retries = list(
                s.scalars(
                    select(GrantRow.id)
                    .where(GrantRow.status == GrantStatus.ENDING, GrantRow.retry_at <= now)
                    .order_by(GrantRow.retry_at)
                    .limit(limit)
                )
            )
        return expiring, retries


def _describe(reason: EndReason, note: str) -> str:
    return f"{reason.value}: {note}" if note else reason.value


def _ended_event(row: GrantRow, actor: Actor, output: str) -> AuditEvent:
    return AuditEvent(
        f"grant.{row.status}",  # expired, revoked, or failed (a failed run's undo confirmed)
        actor.name,
        actor.source,
        subject=row.user,
        request_id=row.request_id,
        grant_id=row.id,
        detail={
            "group": row.group_name,
            "reason": _describe(EndReason(row.end_reason or EndReason.EXPIRED), row.end_note or "")[
                :500
            ],
            "end": iso(row.end_at),
            "output": output[:1000],
        },
    )


def _end_failed_event(row: GrantRow, actor: Actor) -> AuditEvent:
    return AuditEvent(
        "grant.end_failed",
        actor.name,
        actor.source,
        outcome="failed",
        subject=row.user,
        request_id=row.request_id,
        grant_id=row.id,
        detail={
            "group": row.group_name,
            "attempts": row.end_attempts,
            "error": (row.last_error or "")[:1000],
        },
    )
