"""Make the provider match sekisho's grants for one (user, group). The only code that calls it.

Activation, expiry, release, revoke, removal and rollback all come down to one question: given
the user's grants for this group, should they be a member, and until when? The answer drives
the seed's two runbook steps each way (add + tag, or remove + untag). Callers hold the
(user, group) lock, so two changes for the same pair never interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sekisho.clock import Clock
from sekisho.domain.errors import ProviderFailure
from sekisho.domain.grants import membership_end
from sekisho.ports import ModelSource
from sekisho.providers.base import Provider
from sekisho.store import grants
from sekisho.store.unit_of_work import Store


@dataclass(frozen=True)
class StepOutcome:
    step: str
    ok: bool
    output: str


OnStep = Callable[[StepOutcome], None]


class Membership:
    def __init__(self, store: Store, clock: Clock, models: ModelSource, provider: Provider) -> None:
        self._store, self._clock, self._models, self._provider = store, clock, models, provider

    def converge(self, user: str, group: str, on_step: OnStep) -> bool:
        """Run the steps that bring the provider in line; stop at the first failure."""
        with self._store.read() as s:
            model = self._models.model(s)
            now = self._clock.now()
            end = membership_end(grants.membership_windows(s, user, group, now), now)
        provider = self._provider
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
