"""Reading identities: the caller behind a token, and who a user is and what they hold now."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.domain.errors import AuthenticationFailed, NotFound
from sekisho.domain.identity import (
    LoginEnd,
    LoginProof,
    Principal,
    login_end,
    looks_like_a_token,
    token_id,
)
from sekisho.domain.timespec import iso
from sekisho.ports import ModelSource
from sekisho.providers.base import Provider
from sekisho.queries.locks import concerning
from sekisho.queries.viewers import viewer_of
from sekisho.services import permissions
from sekisho.services.views import DirectoryView, GrantView, SignedInView, WhoAmI
from sekisho.store.db import Database
from sekisho.store.grants import active_at
from sekisho.store.tables import GrantRow, TokenRow

REVOKED = "invalid or revoked token: log in again"


class IdentityQueries:
    def __init__(self, db: Database, clock: Clock, models: ModelSource, provider: Provider) -> None:
        self._db, self._clock, self._models, self._provider = db, clock, models, provider

    def authenticate(self, token: str) -> Principal:
        """The caller behind a bearer token, or AuthenticationFailed (expired, revoked, forged)."""
        if not looks_like_a_token(token):
            raise AuthenticationFailed("invalid token: log in again")
        with self._db.read() as s:
            row = s.get(TokenRow, token_id(token))
            model = self._models.model(s)
        if row is None:
            raise AuthenticationFailed(REVOKED)
        ended = login_end(row.user, row.revoked_at, row.expires_at, model, self._clock.now())
        if ended is LoginEnd.REVOKED:
            raise AuthenticationFailed(REVOKED)
        if ended is LoginEnd.EXPIRED:
            raise AuthenticationFailed(f"token expired at {iso(row.expires_at)}: log in again")
        if ended is LoginEnd.USER_GONE:
            raise AuthenticationFailed("this user is no longer in the access model")
        proof = None
        if row.auth_method is not None:
            amr = tuple((row.amr or "").split())
            proof = LoginProof(row.auth_method, row.auth_time, amr, row.acr)
        return Principal(row.user, row.id, row.expires_at, proof)

    def describe(
        self,
        actor: Actor,
        name: str,
        expires_at: datetime | None = None,
        *,
        directory: bool = False,
        proof: LoginProof | None = None,
    ) -> WhoAmI:
        """A user's identity, groups, live grants and, on request, the provider's view;
        `proof`: how the caller's own login was proven (shown to them by whoami)."""
        now = self._clock.now()
        with self._db.read() as s:
            model = self._models.model(s)
            if name != actor.name:
                permissions.require_auditor(model, actor, "look up other users")
            user = model.user(name)
            if user is None:
                raise NotFound(f"no user {name!r}")
            rows = s.scalars(
                select(GrantRow)
                .where(GrantRow.user == name, active_at(now))
                .order_by(GrantRow.end_at)
            )
            viewer = viewer_of(model, actor)  # what the asker may do to them
            grants = [v for v in (GrantView.of(r, now, viewer) for r in rows) if v.active]
            work_groups = [g.name for g in model.groups if g.is_work]
            in_force = concerning(s, model, name, now)
        return WhoAmI(
            user=name,
            display_name=user.display_name or name,
            email=user.email,
            groups=[g.name for g in model.standing_groups_of(name)],
            admin=model.is_admin(name),
            auditor=model.is_auditor(name),
            token_expires_at=expires_at,
            grants=grants,
            locks=in_force,
            directory=self._directory(name, work_groups) if directory else None,
            signed_in=SignedInView.of(proof) if proof else None,
        )

    def _directory(self, name: str, work_groups: list[str]) -> DirectoryView:
        provider = self._provider
        return DirectoryView(
            provider=provider.name,
            memberships=[g for g in work_groups if name in provider.members(g)],
            tags=provider.tags(name),
        )
