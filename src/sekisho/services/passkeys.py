"""Passkeys as interfaces call them (`core.passkeys`): add, remove, list, and step up.

The ceremonies are `operations.passkeys` (RegisterPasskey, ProvePasskey, RemovePasskey); the
reads are `queries.passkeys`. Each ceremony is `begin` (the browser's options, JSON) and
`finish` (what the authenticator answered, JSON).
"""

from __future__ import annotations

from datetime import datetime

from sekisho.domain.actor import Actor
from sekisho.domain.step_up import Proof, StepUpRule
from sekisho.operations.passkeys import ProvePasskey, RegisterPasskey, RemovePasskey
from sekisho.queries.passkeys import PasskeyQueries, PasskeyView


class PasskeyService:
    def __init__(
        self,
        register: RegisterPasskey,
        remove: RemovePasskey,
        prove: ProvePasskey,
        reads: PasskeyQueries,
    ) -> None:
        self._register, self._remove, self._prove, self._reads = register, remove, prove, reads

    def begin_registration(self, actor: Actor, display_name: str) -> str:
        return self._register.begin(actor, display_name)

    def register(self, actor: Actor, answer: str, name: str) -> int:
        return self._register.finish(actor, answer, name)

    def remove(self, actor: Actor, passkey_id: int) -> None:
        self._remove.execute(actor, passkey_id)

    def begin_step_up(self, actor: Actor) -> str:
        return self._prove.begin(actor)

    def step_up(self, actor: Actor, answer: str) -> datetime:
        return self._prove.finish(actor, answer)

    def passkeys(self, actor: Actor) -> list[PasskeyView]:
        return self._reads.passkeys(actor)

    def fresh(self, actor: Actor, rule: StepUpRule) -> Proof | None:
        return self._reads.fresh(actor, rule)
