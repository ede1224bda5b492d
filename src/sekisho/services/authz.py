"""The decision service: may USER assume ROLE / connect TARGET now, and why.

One place for the gateway, switch-role and `sekisho can`. Every denial is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from sekisho.domain.access import Verb
from sekisho.domain.actor import Actor
from sekisho.domain.decisions import AccessDecision, decide_access
from sekisho.domain.errors import Forbidden
from sekisho.domain.grants import GrantWindow
from sekisho.domain.text import SHORT_TEXT, check_text
from sekisho.services import policy
from sekisho.services.audit import AuditEvent
from sekisho.store import grants

if TYPE_CHECKING:
    from sekisho.services.core import Core


def live_grants(session: Session, user: str, at: datetime) -> list[GrantWindow]:
    """The user's grants active at `at`; `is_active` decides the same for each of them."""
    return grants.active_windows(session, user, at)


class Authorizer:
    def __init__(self, core: Core) -> None:
        self._core = core

    def decide(self, user: str, verb: Verb, obj: str, at: datetime | None = None) -> AccessDecision:
        """The decision alone, without recording it (for pages that show what a user can reach)."""
        with self._core.db.read() as s:
            model = self._core.models.model(s)
            at = at or self._core.now()
            return decide_access(model, user, verb, obj, live_grants(s, user, at), at)

    def check(self, actor: Actor, user: str, verb: Verb, obj: str) -> AccessDecision:
        """Decide for `user` on behalf of `actor`; a denial lands in the audit trail.

        `user` and `obj` are refused (InvalidInput) if they hold control characters.
        Decided in a read transaction: allowing writes nothing, so decisions never queue
        behind the writers; only a denial takes a write transaction, for its audit entry.
        """
        core = self._core
        # What is asked about lands in the audit trail, read on auditors' terminals: text only.
        user = check_text("user", user, max_length=SHORT_TEXT)
        obj = check_text("object", obj, max_length=SHORT_TEXT)
        with core.db.read() as s:
            model = core.models.model(s)
            if not policy.may_ask_about(model, actor, user):
                raise Forbidden("you may ask only about yourself; auditors and admins about anyone")
            now = core.now()
            decision = decide_access(model, user, verb, obj, live_grants(s, user, now), now)
        if not decision.allowed:
            with core.db.write() as s:
                core.audit(s, denial_event(actor, decision))
        return decision


def denial_event(actor: Actor, decision: AccessDecision) -> AuditEvent:
    return AuditEvent(
        "authz.denied",
        actor.name,
        actor.source,
        outcome="denied",
        subject=decision.user,
        object=decision.object,
        detail={"verb": decision.verb.value, "reason": decision.reason[:500]},
    )
