"""Deciding production access on someone's behalf: CheckAccess. Every denial is recorded.

One place for the gateway, the decisions API and `sekisho can` (switch-role asks in
`IssueRoleCredentials`). Decided in a read transaction: allowing writes nothing, so decisions
never queue behind the writers; only a denial takes a write transaction, for its record.
"""

from __future__ import annotations

from sekisho.clock import Clock
from sekisho.domain.access import Verb
from sekisho.domain.access_decisions import AccessDecision
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Forbidden
from sekisho.domain.events import AccessDenied
from sekisho.domain.text import SHORT_TEXT, check_text
from sekisho.ports import ModelSource
from sekisho.queries.access_decisions import DecideAccess
from sekisho.services import permissions
from sekisho.store.unit_of_work import Store


class CheckAccess:
    """Decide for `user` on behalf of `actor`; a denial lands in the audit trail.

    `user` and `obj` are refused (InvalidInput) if they hold control characters.
    """

    def __init__(
        self, store: Store, clock: Clock, models: ModelSource, decide: DecideAccess
    ) -> None:
        self._store, self._clock, self._models, self._decide = store, clock, models, decide

    def execute(self, actor: Actor, user: str, verb: Verb, obj: str) -> AccessDecision:
        # What is asked about lands in the audit trail, read on auditors' terminals: text only.
        user = check_text("user", user, max_length=SHORT_TEXT)
        obj = check_text("object", obj, max_length=SHORT_TEXT)
        now = self._clock.now()
        with self._store.read() as s:
            model = self._models.model(s)
            if not permissions.may_ask_about(model, actor, user):
                raise Forbidden("you may ask only about yourself; auditors and admins about anyone")
            decision = self._decide.in_session(s, model, user, verb, obj, now)
        if not decision.allowed:
            with self._store.write() as uow:
                uow.record(AccessDenied(now, actor, decision))
        return decision
