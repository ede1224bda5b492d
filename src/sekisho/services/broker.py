"""Switch role, brokered: role credentials from STS, only while the decision service says yes.

The seed has people switch role themselves once IAM lets them; removing them from the group
then does nothing to credentials already issued (up to the role's session length). sekisho
asks STS for them on the user's behalf instead: the session name carries the user and the
request, the credentials expire no later than the grant (a session policy denies everything
after the grant's end, since STS will not issue less than 15 minutes), and when a grant ends
early the role's older sessions of that user are denied (the IAM "revoke older sessions"
pattern, scoped to the user).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sekisho.domain.access import ProviderKind, Verb
from sekisho.domain.actor import Actor
from sekisho.domain.credentials import (
    IamRole,
    IssuedCredentials,
    RoleSessionAsk,
    session_length,
    session_name,
)
from sekisho.domain.errors import Conflict, Forbidden, InvalidInput
from sekisho.domain.timespec import format_duration, iso
from sekisho.ports import RoleCredentials
from sekisho.providers.aws_policies import role_arn
from sekisho.services.audit import AuditEvent
from sekisho.store.tables import GrantRow

if TYPE_CHECKING:
    from sekisho.services.core import Core


class CredentialBroker:
    def __init__(self, core: Core, credentials: RoleCredentials) -> None:
        self._core = core
        self._credentials = credentials

    def assume(
        self, actor: Actor, ref: str, duration: timedelta | None = None, console: bool = False
    ) -> IssuedCredentials:
        core = self._core
        model = core.models.model()
        role = model.role(ref)
        if role is None:
            raise InvalidInput.one("role", "unknown_role", f"no role {ref[:80]!r}")
        if model.provider.kind is not ProviderKind.AWS_IAM:
            raise Conflict("role credentials need the aws_iam provider in the access model")
        if console and not role.console:
            raise Forbidden(f"{ref} does not allow console sign-in (console: true in the model)")
        decision = core.authz.check(actor, actor.name, Verb.ASSUME, ref)
        if not decision.allowed:
            raise Forbidden(decision.reason)
        now = core.now()
        lifetime = session_length(duration, role.max_session, decision.grant_end, now)
        request_id = self._request_of(decision.grant_id)
        arn = role_arn(model, role, strict=True)
        name = session_name(actor.name, request_id)
        ask = RoleSessionAsk(arn, name, lifetime, actor.name, decision.grant_end)
        keys = self._credentials.issue(model.provider, ask)
        url = self._credentials.console_url(model.provider, keys) if console else None
        issued = IssuedCredentials(
            role_arn=arn,
            session_name=name,
            access_key_id=keys.access_key_id,
            secret_access_key=keys.secret_access_key,
            session_token=keys.session_token,
            expiration=keys.expiration,
            via=decision.reason,
            console_url=url,
        )
        with core.db.write() as s:
            core.audit(
                s,
                AuditEvent(
                    "credentials.issued",
                    actor.name,
                    actor.source,
                    subject=actor.name,
                    grant_id=decision.grant_id,
                    request_id=request_id,
                    object=ref,
                    detail={
                        "role": arn,
                        "via": decision.reason[:200],
                        "expires": iso(issued.expiration),
                        "output": f"session {name} for {format_duration(lifetime)}",
                    },
                ),
            )
        return issued

    def _request_of(self, grant_id: int | None) -> int | None:
        if grant_id is None:
            return None
        with self._core.db.read() as s:
            grant = s.get(GrantRow, grant_id)
            return grant.request_id if grant else None

    # -- when a grant ends early ----------------------------------------------------------

    def revoke_role_sessions(self, user: str, group: str, cutoff: datetime) -> list[str]:
        """Deny, on every role the group could assume, `user`'s sessions issued before
        `cutoff`. Other people's sessions are untouched. Returns what was done."""
        core = self._core
        model = core.models.model()
        if model.provider.kind is not ProviderKind.AWS_IAM:
            return []
        found = model.group(group)
        if found is None:
            return []
        done = []
        for ref in sorted(found.permissions.assume):
            role = model.role(ref)
            account = model.account(role.account) if role else None
            if role is None or account is None:
                continue
            iam_role = IamRole(role.name, account.broker_role_arn)
            now = core.now()
            self._credentials.deny_older_sessions(model.provider, iam_role, user, cutoff, now)
            done.append(f"denied {user}'s sessions of {ref} issued before {iso(cutoff)}")
        return done
