"""Ending grants, and the grant a seed TTL tag becomes: EndGrants (the one way any grant ends),
ReleaseGrant, RevokeGrant and ImportSeedGrant.

Ending is two-phase. First the grant turns `ending` in the store, which ends access at once
(decisions only honour `active` grants) and tells subscribers (the gateway cuts sessions).
Then the provider removes the membership; until it confirms, the grant stays `ending` and is
retried with backoff. It is never marked ended before the provider confirmed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel, TemplateAction
from sekisho.domain.actor import Actor
from sekisho.domain.errors import InvalidInput, NotFound, ProviderFailure
from sekisho.domain.events import (
    GrantActivated,
    GrantEnded,
    GrantEndFailed,
    GrantEnding,
    RunbookStep,
    SeedGrantImported,
)
from sekisho.domain.grants import (
    EndReason,
    GrantStatus,
    check_endable,
    check_ending,
    check_release,
    ended_status,
)
from sekisho.domain.requests import RequestStatus
from sekisho.domain.text import LONG_TEXT, check_text
from sekisho.domain.timespec import backoff
from sekisho.ports import ModelSource, RevokeRoleSessions
from sekisho.services import permissions
from sekisho.services.membership import Membership, OnStep, StepOutcome, gather_steps
from sekisho.store import grants
from sekisho.store.tables import GrantRow, RequestRow
from sekisho.store.unit_of_work import Store, UnitOfWork

RECONCILER = Actor.system("reconciler")
IMPORTED_TEMPLATE = "(imported seed TTL tag)"
# Ended before their time: role credentials issued under them must stop working now.
_EARLY = frozenset({EndReason.RELEASED, EndReason.REVOKED, EndReason.REMOVED, EndReason.LOCKED})


@dataclass
class EndResult:
    ended: list[int] = field(default_factory=list)  # provider confirmed
    pending: list[int] = field(default_factory=list)  # access over; provider will be retried
    errors: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ending:
    """A grant whose access has ended, waiting for the provider to confirm."""

    id: int
    request_id: int
    user: str
    group: str
    reason: EndReason


@dataclass(frozen=True)
class EndingTimes:
    lease: timedelta  # an ending in flight is taken over after this (its process died)
    retry_first: timedelta  # an unconfirmed removal is retried after this, then twice as long
    retry_max: timedelta


@dataclass(frozen=True)
class _PairOutcome:
    """What the provider said for one (user, group): its steps, and whether it confirmed."""

    endings: list[Ending]
    steps: list[RunbookStep]
    confirmed: bool


class EndGrants:
    """End grants: access stops now; the provider follows, or is retried.

    `start` turns grants `ending` inside the caller's unit of work (a release checks and starts
    in one transaction); `finish` makes the provider follow, one (user, group) at a time under
    its lock, and writes every outcome in one transaction, however many grants it ends.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        membership: Membership,
        revoke_role_sessions: RevokeRoleSessions,
        times: EndingTimes,
    ) -> None:
        self._store, self._clock, self._membership = store, clock, membership
        self._revoke, self._times = revoke_role_sessions, times

    def execute(
        self,
        grant_ids: Sequence[int],
        reason: EndReason,
        actor: Actor,
        *,
        note: str = "",
        also_on: int | None = None,
    ) -> EndResult:
        """End these grants (those still active or ending). `also_on` names another request
        (a remove request) whose timeline shows the steps too."""
        with self._store.write() as uow:
            rows = grants.lock_endable(uow.session, grant_ids)
            endings = self.start(uow, rows, reason, actor, note)
        return self.finish(endings, actor, also_on=also_on)

    def start(
        self,
        uow: UnitOfWork,
        rows: Sequence[GrantRow],
        reason: EndReason,
        actor: Actor,
        note: str = "",
        *,
        lease: timedelta | None = None,
    ) -> list[Ending]:
        """Turn locked grants `ending` in the caller's unit of work: access ends at its commit.

        A grant already `ending` keeps its first reason (this is a retry). `lease`: how long
        until another runner may take the ending over (the ending lease unless said).
        """
        now = self._clock.now()
        started = []
        for row in rows:
            if row.status != GrantStatus.ENDING:
                check_ending(GrantStatus(row.status), reason)
                grants.move(row, GrantStatus.ENDING)
                row.end_reason, row.ended_by, row.end_note = reason, actor.name, note[:2000]
                uow.record(GrantEnding(now, row.id, actor, reason, note))
            # In flight: if this process dies now, the sweeper takes over after the lease.
            row.retry_at = now + (self._times.lease if lease is None else lease)
            first = EndReason(row.end_reason or EndReason.EXPIRED)
            started.append(Ending(row.id, row.request_id, row.user, row.group_name, first))
        return started

    def finish(
        self, endings: Sequence[Ending], actor: Actor, *, also_on: int | None = None
    ) -> EndResult:
        """Make the provider follow, then write what it said: one transaction for them all.

        If the process dies before that write, the grants stay `ending` and the sweeper
        retries them once their lease has run out (every provider step is idempotent).
        """
        by_pair: dict[tuple[str, str], list[Ending]] = defaultdict(list)
        for ending in endings:
            by_pair[(ending.user, ending.group)].append(ending)
        if not by_pair:
            return EndResult()
        steps: dict[tuple[str, str], list[RunbookStep]] = {pair: [] for pair in by_pair}

        def steps_of(pair: tuple[str, str]) -> OnStep:
            batch = by_pair[pair]
            targets = {e.request_id for e in batch} | ({also_on} if also_on is not None else set())
            return gather_steps(self._clock, steps[pair], tuple(sorted(targets)), actor)

        def confirm(pair: tuple[str, str], on_step: OnStep) -> bool:
            if not any(e.reason in _EARLY for e in by_pair[pair]):
                return True
            return self._revoke_role_sessions(*pair, on_step)

        def record(uow: UnitOfWork, confirmed: dict[tuple[str, str], bool]) -> EndResult:
            result = EndResult()
            rows = grants.lock_ending(uow.session, [e.id for e in endings])
            for pair, batch in by_pair.items():
                outcome = _PairOutcome(batch, steps[pair], confirmed[pair])
                self._settle(uow, rows, outcome, actor, result)
            return result

        return self._membership.follow(list(by_pair), steps_of, record, confirm)

    def _revoke_role_sessions(self, user: str, group: str, record: OnStep) -> bool:
        """An early end also ends role credentials issued before it (AWS): the user's older
        sessions of the group's roles are denied. Unconfirmed, the ending is retried."""
        try:
            done = self._revoke(user, group, self._clock.now())
        except ProviderFailure as exc:
            record(StepOutcome("revoke_role_sessions", False, exc.message))
            return False
        for output in done:
            record(StepOutcome("revoke_role_sessions", True, output))
        return True

    def _settle(
        self,
        uow: UnitOfWork,
        rows: dict[int, GrantRow],
        outcome: _PairOutcome,
        actor: Actor,
        result: EndResult,
    ) -> None:
        uow.record(*outcome.steps)
        outputs = "; ".join(f"{s.step}: {s.output}" for s in outcome.steps if s.ok)
        failures = "; ".join(f"{s.step}: {s.output}" for s in outcome.steps if not s.ok)
        now = self._clock.now()
        for ending in outcome.endings:
            row = rows.get(ending.id)
            if row is None:
                continue  # another runner finished it meanwhile
            if outcome.confirmed:
                grants.move(row, ended_status(ending.reason))
                row.ended_at, row.retry_at, row.last_error = now, None, None
                result.ended.append(row.id)
                uow.record(GrantEnded(now, row.id, actor, outputs))
            else:
                row.end_attempts += 1
                row.retry_at = now + self._backoff(row.end_attempts)
                row.last_error = failures[:2000]
                result.pending.append(row.id)
                result.errors[row.id] = row.last_error
                uow.record(GrantEndFailed(now, row.id, actor))

    def _backoff(self, attempts: int) -> timedelta:
        return backoff(attempts, self._times.retry_first, self._times.retry_max)


class ReleaseGrant:
    """The holder is done: their grant ends now.

    Checked and started in one transaction, on the locked grant: a grant that ended meanwhile
    (expired, revoked, released twice) is a conflict, never a silent success.
    """

    def __init__(self, store: Store, clock: Clock, models: ModelSource, end: EndGrants) -> None:
        self._store, self._clock, self._models, self._end = store, clock, models, end

    def execute(self, actor: Actor, grant_id: int) -> EndResult:
        with self._store.write() as uow:
            model = self._models.model(uow.session)
            now = self._clock.now()
            row = endable_grant(uow.session, model, actor, grant_id, now)
            check_release(grants.window(row), actor.name, now)
            endings = self._end.start(
                uow, [row], EndReason.RELEASED, actor, "released by the holder"
            )
        return self._end.finish(endings, actor)


class RevokeGrant:
    """An admin ends someone's grant now, saying why. Checked and started in one transaction."""

    def __init__(self, store: Store, clock: Clock, models: ModelSource, end: EndGrants) -> None:
        self._store, self._clock, self._models, self._end = store, clock, models, end

    def execute(self, actor: Actor, grant_id: int, reason: str) -> EndResult:
        reason = check_text("reason", reason or "", max_length=LONG_TEXT, multiline=True)
        with self._store.write() as uow:
            model = self._models.model(uow.session)
            permissions.require_admin(model, actor, "revoke grants")
            if not reason:
                raise InvalidInput.one("reason", "required", "say why the grant is revoked")
            row = endable_grant(uow.session, model, actor, grant_id, self._clock.now())
            endings = self._end.start(uow, [row], EndReason.REVOKED, actor, reason)
        return self._end.finish(endings, actor)


def endable_grant(
    session: Session, model: AccessModel, actor: Actor, grant_id: int, now: datetime
) -> GrantRow:
    """The grant, locked, if `actor` may see it and it is active now."""
    row = grants.lock(session, grant_id)
    if row is None or not (row.user == actor.name or permissions.is_admin(model, actor)):
        raise NotFound(f"no grant #{grant_id}")
    check_endable(grants.window(row), now)
    return row


class ImportSeedGrant:
    """A seed TTL tag becomes a grant with a request on record, as if filed and approved
    before sekisho took over; it is activated as every grant is (audited, its holder told,
    its reminder scheduled)."""

    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def execute(self, user: str, group: str, end: datetime, found: str) -> int:
        """Import `user`'s membership of `group` until `end`; `found` says what was seen."""
        now = self._clock.now()
        with self._store.write() as uow:
            s = uow.session
            model_id, _model = self._models.current(s)
            request = _imported_request(model_id, user, group, end, found, now)
            s.add(request)
            s.flush()
            grant = grants.add(s, request.id, user, group, now, end, now)
            grants.activate(grant, now)
            uow.record(
                GrantActivated(now, grant.id, RECONCILER),
                SeedGrantImported(now, request.id, grant.id),
            )
            return grant.id


def _imported_request(
    model_id: int, user: str, group: str, end: datetime, found: str, now: datetime
) -> RequestRow:
    return RequestRow(
        template=IMPORTED_TEMPLATE,
        action=TemplateAction.GRANT.value,
        requester=RECONCILER.name,
        subject=user,
        group_name=group,
        start_at=None,
        end_at=end,
        reason=f"imported: {found}",
        change_info={},
        params={},
        status=RequestStatus.SUCCEEDED,
        level=0,
        created_at=now,
        updated_at=now,
        decide_by=now,
        model_id=model_id,
    )
