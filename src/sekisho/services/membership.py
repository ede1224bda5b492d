"""Make the provider match sekisho's grants for each (user, group). The only code that calls it.

Activation, expiry, release, revoke, removal and rollback all come down to one question: given
the user's grants for this group, should they be a member, and until when? The answer drives
the seed's two runbook steps each way (add + tag, or remove + untag). Two changes for the same
pair never interleave: each runs under the pair's lock (`MembershipLocks`).

`follow` is the one way a change is made and recorded. A provider that lives in sekisho's own
database (`local`) makes its changes inside the transaction that records them, so the two
commit together and a batch costs one transaction. Any other provider is called first, pair by
pair, and the record is written after it answered: no transaction waits on a remote system.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel
from sekisho.domain.actor import Actor
from sekisho.domain.errors import ProviderFailure
from sekisho.domain.events import RunbookStep
from sekisho.domain.grants import membership_end
from sekisho.ports import MembershipLocks, ModelSource
from sekisho.providers.base import Preloading, Provider
from sekisho.store import grants
from sekisho.store.unit_of_work import Store, UnitOfWork

T = TypeVar("T")
Pair = tuple[str, str]  # (user, group)


@dataclass(frozen=True)
class StepOutcome:
    step: str
    ok: bool
    output: str


OnStep = Callable[[StepOutcome], None]
# Where a pair's step outcomes go.
StepsOf = Callable[[Pair], OnStep]
# A further step a pair's change needs before it counts as confirmed (role sessions).
Confirm = Callable[[Pair, OnStep], bool]
# Writes what the provider said (pair -> confirmed) in the unit of work that records it.
Record = Callable[[UnitOfWork, dict[Pair, bool]], T]


def gather_steps(
    clock: Clock, steps: list[RunbookStep], request_ids: tuple[int, ...], actor: Actor
) -> OnStep:
    """Collect step outcomes as the timeline events the caller records with its outcome."""

    def record(o: StepOutcome) -> None:
        steps.append(RunbookStep(clock.now(), request_ids, actor, o.step, o.ok, o.output))

    return record


class Membership:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        provider: Provider,
        locks: MembershipLocks,
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._provider, self._locks = provider, locks

    def follow(
        self,
        pairs: Sequence[Pair],
        steps_of: StepsOf,
        record: Record[T],
        confirm: Confirm | None = None,
    ) -> T:
        """Bring the provider in line for every pair, then `record` what it said.

        Where the provider lives in sekisho's database, the changes, `confirm` and `record`
        run in one transaction under every pair's lock: they commit together, or roll back
        together and are retried as a crashed run is. Otherwise each pair is changed under its
        own lock, then `record` runs in a transaction of its own.
        """
        chosen = sorted(set(pairs))
        with self._store.read() as s:
            in_store = self._provider.within(s) is not None
        if in_store:
            done = self._follow_in_store(chosen, steps_of, record, confirm)
            if done is not None:
                return done[0]
        confirmed = {}
        for pair in chosen:
            with self._locks.hold(*pair):
                on_step = steps_of(pair)
                ok = self.converge(*pair, on_step)
                confirmed[pair] = ok and (confirm is None or confirm(pair, on_step))
        with self._store.write() as uow:
            return record(uow, confirmed)

    def _follow_in_store(
        self, pairs: list[Pair], steps_of: StepsOf, record: Record[T], confirm: Confirm | None
    ) -> tuple[T] | None:
        """The in-store path; None if a new model moved the provider out of the store since
        `follow` looked (nothing was written: the caller takes the other path)."""
        # `confirm` calls out only where there is something outside sekisho's database to
        # confirm: role sessions exist with aws_iam, which never gets here.
        with self._locks.hold_all(pairs), self._store.write() as uow:
            provider = self._provider.within(uow.session)
            if provider is None:
                return None
            model = self._models.model(uow.session)
            ends = self._ends(uow.session, pairs)
            if isinstance(provider, Preloading):
                provider.preload(pairs)
            confirmed = {}
            for pair in pairs:
                on_step = steps_of(pair)
                ok = self._run_steps(provider, model, pair, ends.get(pair), on_step)
                confirmed[pair] = ok and (confirm is None or confirm(pair, on_step))
            return (record(uow, confirmed),)

    def converge(self, user: str, group: str, on_step: OnStep) -> bool:
        """Run the steps that bring the provider in line for one pair, calling it directly;
        stop at the first failure. The caller holds the pair's lock."""
        with self._store.read() as s:
            model = self._models.model(s)
            end = self._ends(s, [(user, group)]).get((user, group))
        return self._run_steps(self._provider, model, (user, group), end, on_step)

    def _ends(self, session: Session, pairs: Sequence[Pair]) -> dict[Pair, datetime]:
        """Until when each pair should be a member (absent: not at all)."""
        now = self._clock.now()
        found = {}
        for pair, windows in grants.membership_windows_of(session, pairs, now).items():
            end = membership_end(windows, now)
            if end is not None:
                found[pair] = end
        return found

    @staticmethod
    def _run_steps(
        provider: Provider,
        model: AccessModel,
        pair: Pair,
        end: datetime | None,
        on_step: OnStep,
    ) -> bool:
        user, group = pair
        steps: list[tuple[str, Callable[[], str]]]
        if end is None:
            steps = [
                ("remove_user_from_group", lambda: provider.remove_member(user, group)),
                ("untag_user", lambda: provider.delete_tag(user, group)),
            ]
        else:
            steps = [
                ("add_user_to_group", lambda: provider.add_member(user, group)),
                ("tag_user", lambda: provider.set_tag(user, group, model.ttl_tag(end))),
            ]
        for name, run in steps:
            try:
                output = run()
            except ProviderFailure as exc:
                on_step(StepOutcome(name, ok=False, output=str(exc)[:1000]))
                return False
            on_step(StepOutcome(name, ok=True, output=output))
        return True
