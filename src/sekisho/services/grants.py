"""Grants as interfaces call them (`core.grants`): list and show (`queries.grants`, each grant
with what the viewer may do to it), release and revoke.

Ending is `operations.grants.EndGrants`, the one way any grant ends; release and revoke are
operations that check and start the ending in one transaction.
"""

from __future__ import annotations

from sekisho.domain.actor import Actor
from sekisho.operations.grants import ReleaseGrant, RevokeGrant
from sekisho.queries.grants import GrantQueries
from sekisho.services.views import GrantView


class GrantService:
    def __init__(self, reads: GrantQueries, release: ReleaseGrant, revoke: RevokeGrant) -> None:
        self._reads, self._release, self._revoke = reads, release, revoke

    def list_grants(
        self, actor: Actor, *, active_only: bool = False, user: str | None = None, limit: int = 500
    ) -> list[GrantView]:
        return self._reads.list_grants(actor, active_only=active_only, user=user, limit=limit)

    def get(self, actor: Actor, grant_id: int) -> GrantView:
        return self._reads.get(actor, grant_id)

    def release(self, actor: Actor, grant_id: int) -> GrantView:
        """The holder is done: end the grant now."""
        self._release.execute(actor, grant_id)
        return self.get(actor, grant_id)

    def revoke(self, actor: Actor, grant_id: int, reason: str) -> GrantView:
        self._revoke.execute(actor, grant_id, reason)
        return self.get(actor, grant_id)
