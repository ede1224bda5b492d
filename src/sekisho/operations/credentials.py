"""Switch role, brokered: IssueRoleCredentials, and RevokeRoleSessions when a grant ends early.

The seed has people switch role themselves once IAM lets them; removing them from the group
then does nothing to credentials already issued (up to the role's session length). sekisho
asks STS for them on the user's behalf instead, only while an access decision allows it: the
session name carries the user and the request, the credentials expire no later than the
grant (`domain.credentials`), and when a grant ends early the role's older sessions of that
user are denied (the IAM "revoke older sessions" pattern, scoped to the user).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel, ProviderKind, ProviderSettings, Role, Verb
from sekisho.domain.access_decisions import AccessDecision
from sekisho.domain.actor import Actor
from sekisho.domain.credentials import (
    IamRole,
    IssuedCredentials,
    RoleSessionAsk,
    SessionKeys,
    session_length,
    session_name,
)
from sekisho.domain.errors import Conflict, Forbidden, InvalidInput
from sekisho.domain.events import AccessDenied, CredentialsIssued
from sekisho.domain.timespec import iso
from sekisho.ports import ModelSource, RoleCredentials
from sekisho.providers.aws_policies import role_arn
from sekisho.queries.access_decisions import DecideAccess
from sekisho.store.tables import GrantRow
from sekisho.store.unit_of_work import Store


@dataclass(frozen=True)
class _Session:
    """What will be asked of STS, and why it may be."""

    ref: str
    aws: ProviderSettings
    ask: RoleSessionAsk
    decision: AccessDecision
    request_id: int | None

    def credentials(self, keys: SessionKeys, console_url: str | None) -> IssuedCredentials:
        return IssuedCredentials(
            role_arn=self.ask.role_arn,
            session_name=self.ask.session_name,
            access_key_id=keys.access_key_id,
            secret_access_key=keys.secret_access_key,
            session_token=keys.session_token,
            expiration=keys.expiration,
            via=self.decision.reason,
            console_url=console_url,
        )

    def issued(self, at: datetime, actor: Actor, expires: datetime) -> CredentialsIssued:
        ask, decision = self.ask, self.decision
        return CredentialsIssued(
            at,
            actor,
            role=self.ref,
            role_arn=ask.role_arn,
            session_name=ask.session_name,
            via=decision.reason,
            expires=expires,
            length=ask.duration,
            grant_id=decision.grant_id,
            request_id=self.request_id,
        )


class IssueRoleCredentials:
    """Role credentials from STS for a role `actor` may assume now; never past the grant.

    The decision is made in a read transaction and STS is called outside any transaction; only
    the record of what was issued (or refused) takes a write transaction, after the fact.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        decide: DecideAccess,
        credentials: RoleCredentials,
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._decide, self._credentials = decide, credentials

    def execute(
        self, actor: Actor, ref: str, duration: timedelta | None = None, console: bool = False
    ) -> IssuedCredentials:
        planned = self._plan(actor, ref, duration, console)
        keys = self._credentials.issue(planned.aws, planned.ask)
        url = self._credentials.console_url(planned.aws, keys) if console else None
        with self._store.write() as uow:
            uow.record(planned.issued(self._clock.now(), actor, keys.expiration))
        return planned.credentials(keys, url)

    def _plan(self, actor: Actor, ref: str, duration: timedelta | None, console: bool) -> _Session:
        now = self._clock.now()
        with self._store.read() as s:
            model = self._models.model(s)
            role = brokered_role(model, ref, console)
            decision = self._decide.in_session(s, model, actor.name, Verb.ASSUME, ref, now)
            request_id = _request_of(s, decision.grant_id) if decision.allowed else None
        if not decision.allowed:
            with self._store.write() as uow:
                uow.record(AccessDenied(now, actor, decision))
            raise Forbidden(decision.reason)
        ask = RoleSessionAsk(
            role_arn=role_arn(model, role, strict=True),
            session_name=session_name(actor.name, request_id),
            duration=session_length(duration, role.max_session, decision.grant_end, now),
            source_identity=actor.name,
            not_after=decision.grant_end,  # never outlive the grant
        )
        return _Session(ref, model.provider, ask, decision, request_id)


class RevokeRoleSessions:
    """A grant ended early: on every role its group could assume, deny `user`'s sessions
    issued before `cutoff`. Other people's sessions are untouched. Returns what was done."""

    def __init__(self, clock: Clock, models: ModelSource, credentials: RoleCredentials) -> None:
        self._clock, self._models, self._credentials = clock, models, credentials

    def execute(self, user: str, group: str, cutoff: datetime) -> list[str]:
        model = self._models.model()
        found = model.group(group)
        if model.provider.kind is not ProviderKind.AWS_IAM or found is None:
            return []
        done: list[str] = []
        for ref in sorted(found.permissions.assume):
            done += self._deny(model, ref, [user], cutoff)
        return done

    def of_role(self, ref: str, users: Sequence[str], cutoff: datetime) -> list[str]:
        """A role is locked: deny these users' sessions of that one role issued before
        `cutoff` (their sessions of other roles are untouched)."""
        model = self._models.model()
        if model.provider.kind is not ProviderKind.AWS_IAM:
            return []
        return self._deny(model, ref, users, cutoff)

    def _deny(
        self, model: AccessModel, ref: str, users: Sequence[str], cutoff: datetime
    ) -> list[str]:
        role = model.role(ref)
        account = model.account(role.account) if role else None
        if role is None or account is None:
            return []
        iam_role = IamRole(role.name, account.broker_role_arn)
        done = []
        for user in users:
            now = self._clock.now()
            self._credentials.deny_older_sessions(model.provider, iam_role, user, cutoff, now)
            done.append(f"denied {user}'s sessions of {ref} issued before {iso(cutoff)}")
        return done


def brokered_role(model: AccessModel, ref: str, console: bool) -> Role:
    """The role sekisho may broker credentials for (an access decision still has to allow it)."""
    role = model.role(ref)
    if role is None:
        raise InvalidInput.one("role", "unknown_role", f"no role {ref[:80]!r}")
    if model.provider.kind is not ProviderKind.AWS_IAM:
        raise Conflict("role credentials need the aws_iam provider in the access model")
    if console and not role.console:
        raise Forbidden(f"{ref} does not allow console sign-in (console: true in the model)")
    return role


def _request_of(session: Session, grant_id: int | None) -> int | None:
    if grant_id is None:
        return None
    grant = session.get(GrantRow, grant_id)
    return grant.request_id if grant else None
