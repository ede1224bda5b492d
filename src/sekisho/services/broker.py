"""Switch role, brokered, as interfaces call it: `assume` issues role credentials
(`IssueRoleCredentials`); `revoke_role_sessions` denies a user's older sessions when a grant
ends early (`RevokeRoleSessions`, which `services.grants` calls)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sekisho.domain.actor import Actor
from sekisho.domain.credentials import IssuedCredentials
from sekisho.operations.credentials import IssueRoleCredentials, RevokeRoleSessions


class CredentialBroker:
    def __init__(self, issue: IssueRoleCredentials, revoke: RevokeRoleSessions) -> None:
        self._issue, self._revoke = issue, revoke

    def assume(
        self, actor: Actor, ref: str, duration: timedelta | None = None, console: bool = False
    ) -> IssuedCredentials:
        return self._issue.execute(actor, ref, duration, console)

    def revoke_role_sessions(self, user: str, group: str, cutoff: datetime) -> list[str]:
        """Deny, on every role the group could assume, `user`'s sessions issued before
        `cutoff`. Other people's sessions are untouched. Returns what was done."""
        return self._revoke.execute(user, group, cutoff)

    def deny_role_sessions(self, ref: str, users: Sequence[str], cutoff: datetime) -> list[str]:
        """Deny these users' sessions of role `ref` issued before `cutoff` (a role lock)."""
        return self._revoke.of_role(ref, users, cutoff)
