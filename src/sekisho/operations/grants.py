"""EndingGrant grants, and the grant a seed TTL tag becomes: EndGrants (the one way any grant ends),
ReleaseGrant, RevokeGrant and ImportSeedGrant.

EndingGrant is two-phase. First the grant turns `ending` in the store, which ends access at once
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
from sekisho.domain.grants import EndingGrant, EndReason, check_endable, check_release
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
class EndingTimes:
    lease: timedelta  # an ending in flight is taken over after this (its process died)
    retry_first: timedelta  # an unconfirmed removal is retried after this, then twice as long
    retry_max: timedelta


@dataclass(frozen=True)
class _PairOutcome:
    """What the provider said for one (user, group): its steps, and whether it confirmed."""

    endings: list[EndingGrant]
    steps: list[RunbookStep]
    confirmed: bool

    @property
    def pair(self) -> tuple[str, str]:
        return (self.endings[0].user, self.endings[0].group)


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
            endings = self.start(uow, grant_ids, reason, actor, note)
        return self.finish(endings, actor, also_on=also_on)

    def start(
        self,
        uow: UnitOfWork,
        grant_ids: Sequence[int],
        reason: EndReason,
        actor: Actor,
        note: str = "",
        *,
        lease: timedelta | None = None,
    ) -> list[EndingGrant]:
        """Turn these grants `ending` in the caller's unit of work: access ends at its commit.

        Those that may end for `reason` start now; those already `ending` keep their first
        reason (this is a retry); any other is left alone. `lease`: how long until another
        runner may take the ending over (the ending lease unless said).
        """
        now = self._clock.now()
        # In flight: if this process dies now, the sweeper takes over after the lease.
        retry_at = now + (self._times.lease if lease is None else lease)
        s = uow.session
        renewed = grants.renew_endings(s, grant_ids, retry_at)
        # An expiry re-checks the end under the row lock: picked as due before an extension
        # committed, a grant whose end moved is not ended at its old one.
        due_by = now if reason is EndReason.EXPIRED else None
        begun = grants.begin_ending(
            s, grant_ids, reason, actor.name, note[:2000], retry_at, due_by=due_by
        )
        uow.record(*(GrantEnding(now, grant, actor) for grant in begun))
        return sorted([*renewed, *begun], key=lambda g: g.id)

    def finish(
        self, endings: Sequence[EndingGrant], actor: Actor, *, also_on: int | None = None
    ) -> EndResult:
        """Make the provider follow, then write what it said: one transaction for them all.

        If the process dies before that write, the grants stay `ending` and the sweeper
        retries them once their lease has run out (every provider step is idempotent).
        """
        by_pair: dict[tuple[str, str], list[EndingGrant]] = defaultdict(list)
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
            outcomes = [_PairOutcome(by_pair[p], steps[p], confirmed[p]) for p in by_pair]
            return self._settle(uow, outcomes, actor)

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

    def _settle(self, uow: UnitOfWork, outcomes: list[_PairOutcome], actor: Actor) -> EndResult:
        """Write what the provider said: every confirmed ending lands in one statement per
        chunk; a pair it did not confirm is retried later, with its error."""
        now = self._clock.now()
        result = EndResult()
        outputs: dict[tuple[str, str], str] = {}
        confirmed: list[EndingGrant] = []
        for outcome in outcomes:
            uow.record(*outcome.steps)
            if outcome.confirmed:
                confirmed += outcome.endings
                outputs[outcome.pair] = _said(outcome.steps, ok=True)
        for grant in grants.confirm_ended(uow.session, confirmed, now):
            result.ended.append(grant.id)
            uow.record(GrantEnded(now, grant, actor, outputs[(grant.user, grant.group)]))
        for outcome in outcomes:
            if not outcome.confirmed:
                self._retry_later(uow, outcome, actor, now, result)
        return result

    def _retry_later(
        self, uow: UnitOfWork, outcome: _PairOutcome, actor: Actor, now: datetime, result: EndResult
    ) -> None:
        error = _said(outcome.steps, ok=False)[:2000]

        def retry_at(attempts: int) -> datetime:
            return now + self._backoff(attempts)

        for grant in grants.fail_ending(uow.session, outcome.endings, error, retry_at):
            result.pending.append(grant.id)
            result.errors[grant.id] = error
            uow.record(GrantEndFailed(now, grant, actor))

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
                uow, [row.id], EndReason.RELEASED, actor, "released by the holder"
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
            endings = self._end.start(uow, [row.id], EndReason.REVOKED, actor, reason)
        return self._end.finish(endings, actor)


def _said(steps: Sequence[RunbookStep], *, ok: bool) -> str:
    """What the provider's steps said, those that worked (or those that failed)."""
    return "; ".join(f"{s.step}: {s.output}" for s in steps if s.ok is ok)


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
