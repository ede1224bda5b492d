"""Production access as interfaces call it: may USER assume ROLE / connect TARGET now, and why.

`decide` is the decision alone (`DecideAccess`); `check` asks it on someone's behalf and
records every denial (`CheckAccess`).
"""

from __future__ import annotations

from datetime import datetime

from sekisho.domain.access import Verb
from sekisho.domain.access_decisions import AccessDecision
from sekisho.domain.actor import Actor
from sekisho.operations.access_decisions import CheckAccess
from sekisho.queries.access_decisions import DecideAccess


class AccessDecisions:
    def __init__(self, decide: DecideAccess, check: CheckAccess) -> None:
        self._decide, self._check = decide, check

    def decide(self, user: str, verb: Verb, obj: str, at: datetime | None = None) -> AccessDecision:
        """The decision alone, without recording it (for pages that show what a user can reach)."""
        return self._decide.execute(user, verb, obj, at)

    def check(self, actor: Actor, user: str, verb: Verb, obj: str) -> AccessDecision:
        """Decide for `user` on behalf of `actor`; a denial lands in the audit trail."""
        return self._check.execute(actor, user, verb, obj)
