"""Signing in through the model's identity provider (OpenID Connect, authorization code with
PKCE): StartIdpSignIn sends the browser there, FinishIdpSignIn takes it back.

A sign-in in flight is a row keyed by its state's SHA-256, good once and for ten minutes. It
holds the nonce the ID token must carry, the PKCE verifier (sealed) and the SHA-256 of a
cookie set on the browser that started it: a callback opened in another browser (someone
else's code in your session: login CSRF) is refused. Every refusal is audited, says why in
words, and changes nothing else; the IdP is never called inside a transaction.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from authlib.common.urls import add_params_to_uri
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel
from sekisho.domain.errors import (
    AuthenticationFailed,
    Locked,
    NotFound,
    RateLimited,
    SekishoError,
)
from sekisho.domain.identity import IssuedToken, token_id  # the SHA-256 a secret is kept as
from sekisho.domain.locks import lock_of_user
from sekisho.domain.sso import (
    CliReturn,
    IdpSignIn,
    OidcSettings,
    UnknownPerson,
    groups_of_claims,
    user_of_claims,
)
from sekisho.operations.cli_sign_in import hand_off
from sekisho.operations.sign_in import issue_token, refuse_idp_sign_in
from sekisho.ports import ModelSource
from sekisho.services.secretbox import SecretBox
from sekisho.services.throttle import address_key
from sekisho.sso.oidc import CLOCK_LEEWAY_S, IdpRefused, IdpUnavailable, OidcClient, as_datetime
from sekisho.store import locks
from sekisho.store.tables import DeviceSignInRow, SignInStateRow
from sekisho.store.unit_of_work import Store

STATE_TTL = timedelta(minutes=10)
MAX_PARAM = 2048  # state, code and error as the callback's query carries them


class SsoNotConfigured(NotFound):
    """No sign-in through an identity provider here: the model names none."""

    code = "sso-not-configured"
    title = "Sign-in through an identity provider is not set up"


class RefusedForCli(AuthenticationFailed):
    """A refused sign-in that `sekisho login --sso` started: the browser goes back to the
    CLI's listener with the reason (`cli_return`), so the terminal says it at once."""

    def __init__(self, refusal: AuthenticationFailed | Locked, cli_return: str) -> None:
        super().__init__(refusal.message)
        self.refusal, self.cli_return = refusal, cli_return


@dataclass(frozen=True)
class StartedSignIn:
    url: str  # the IdP's authorization URL
    browser: str  # the binding cookie's value: the callback must bring it back


@dataclass(frozen=True)
class FinishedSignIn:
    """A browser's sign-in (`issued`: its login) or the CLI's (`cli_return`: the loopback URL
    with the one-time code the CLI trades for its login)."""

    issued: IssuedToken | None
    cli_return: str | None
    next_url: str
    sign_in: IdpSignIn


def oidc_settings(model: AccessModel) -> OidcSettings:
    settings = model.identity.oidc
    if settings is None:
        raise SsoNotConfigured("the model names no identity provider (identity.oidc)")
    return settings


# A sign-in in flight is a row until it comes back or expires: an address may have this many
# at once, and the server this many in all, so asking for sign-in pages never fills the store
# (nor, for the device flow, makes sekisho call the IdP without end).
PENDING_PER_ADDRESS = 20
PENDING_IN_ALL = 10_000
Pending = type[SignInStateRow] | type[DeviceSignInRow]


def check_room(session: Session, table: Pending, source: str, now: datetime) -> str:
    """The address key a new sign-in from `source` is kept under; RateLimited (nothing
    stored) when that address, or everyone, has too many in flight."""
    key = address_key(source)[:64]
    live = table.expires_at > now
    mine = session.scalar(select(func.count()).where(live, table.source == key)) or 0
    if mine >= PENDING_PER_ADDRESS:
        raise RateLimited(
            "too many sign-ins in flight from this address: finish one, or try again in "
            "a few minutes"
        )
    if (session.scalar(select(func.count()).where(live)) or 0) >= PENDING_IN_ALL:
        raise RateLimited("too many sign-ins in flight: try again in a few minutes")
    return key


class StartIdpSignIn:
    def __init__(
        self, store: Store, clock: Clock, models: ModelSource, oidc: OidcClient, box: SecretBox
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._oidc, self._box = oidc, box

    def execute(
        self,
        redirect_uri: str,
        next_url: str,
        source: str,
        cli: CliReturn | None = None,
        *,
        fresh: bool = False,
    ) -> StartedSignIn:
        """The URL to send the browser to; IdpUnavailable (nothing stored) if the IdP's
        discovery document cannot be had, RateLimited if `source` (the browser's address)
        has too many sign-ins in flight. `cli`: the sign-in ends at the CLI that started it.
        `fresh`: a step-up; the IdP signs the person in again, and must say so."""
        settings = oidc_settings(self._models.model())
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, browser = secrets.token_urlsafe(48), secrets.token_urlsafe(32)
        url = self._oidc.authorization_url(
            settings, redirect_uri, state, nonce, verifier, fresh=fresh
        )
        now = self._clock.now()
        with self._store.write() as uow:
            uow.session.execute(delete(SignInStateRow).where(SignInStateRow.expires_at <= now))
            key = check_room(uow.session, SignInStateRow, source, now)
            uow.session.add(
                SignInStateRow(
                    id=token_id(state),
                    nonce=nonce,
                    verifier=self._box.seal(verifier),
                    browser=token_id(browser),
                    redirect_uri=redirect_uri[:MAX_PARAM],
                    next_url=next_url[:MAX_PARAM],
                    cli_redirect=cli.redirect_uri if cli else None,
                    cli_challenge=cli.challenge if cli else None,
                    created_at=now,
                    expires_at=now + STATE_TTL,
                    source=key,
                    fresh=fresh or None,
                )
            )
        return StartedSignIn(url, browser)


@dataclass(frozen=True)
class _Pending:
    nonce: str
    verifier: str
    redirect_uri: str
    next_url: str
    cli: CliReturn | None
    started_at: datetime
    fresh: bool  # a step-up: the ID token must show a sign-in after `started_at`


@dataclass(frozen=True)
class Callback:
    """What the IdP sent the browser back with, and the browser's binding cookie."""

    state: str
    code: str
    error: str
    browser: str
    source: str


class FinishIdpSignIn:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        oidc: OidcClient,
        box: SecretBox,
        token_ttl: timedelta,
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._oidc, self._box, self._token_ttl = oidc, box, token_ttl

    def execute(self, callback: Callback) -> FinishedSignIn:
        """A login token for the user the ID token names; every refusal audited and raised
        as AuthenticationFailed (or Locked) with the reason in words, or, for a sign-in the
        CLI started, as RefusedForCli: the CLI hears why at once instead of waiting."""
        pending = self._claim(callback)
        try:
            return self._finish(callback, pending)
        except (AuthenticationFailed, Locked) as exc:
            if pending is None or pending.cli is None:
                raise
            url = add_params_to_uri(pending.cli.redirect_uri, [("error", exc.message[:300])])
            raise RefusedForCli(exc, url) from None

    def _finish(self, callback: Callback, pending: _Pending | None) -> FinishedSignIn:
        source = callback.source[:256]
        if callback.error:  # the IdP's own answer first, whatever became of the state
            why = f"the identity provider did not sign you in ({_error_code(callback.error)})"
            self._refuse(None, source, why)
        if pending is None:
            self._refuse(None, source, "this sign-in expired or was used already; start again")
        if not callback.code or len(callback.code) > MAX_PARAM:
            self._refuse(None, source, "the identity provider sent no authorization code")
        model = self._models.model()
        settings = oidc_settings(model)
        try:
            claims = self._oidc.redeem(
                settings, callback.code, pending.redirect_uri, pending.verifier, pending.nonce
            )
            sign_in = sign_in_of(model, settings, claims)
        except (IdpRefused, IdpUnavailable, UnknownPerson) as exc:
            self._refuse(None, source, str(exc))
        if pending.fresh and not signed_in_again(sign_in, pending.started_at):
            why = "the identity provider did not sign you in again (its auth_time is older)"
            self._refuse(sign_in.user, source, why)
        return self._complete(sign_in, source, pending)

    def _claim(self, callback: Callback) -> _Pending | None:
        """The sign-in this state names, taken (deleted) so it is good once; None if there is
        none now, or another browser brought it."""
        if not callback.state or len(callback.state) > MAX_PARAM:
            return None
        with self._store.write() as uow:
            row = uow.session.get(SignInStateRow, token_id(callback.state), with_for_update=True)
            if row is None:
                return None
            uow.session.delete(row)
            fresh = row.expires_at > self._clock.now()
            same_browser = hmac.compare_digest(row.browser, token_id(callback.browser))
            if not (fresh and same_browser):
                return None
            cli = None
            if row.cli_redirect and row.cli_challenge:
                cli = CliReturn(row.cli_redirect, row.cli_challenge)
            verifier = self._box.open(row.verifier)
            return _Pending(
                row.nonce,
                verifier,
                row.redirect_uri,
                row.next_url,
                cli,
                row.created_at,
                bool(row.fresh),
            )

    def _complete(self, sign_in: IdpSignIn, source: str, pending: _Pending) -> FinishedSignIn:
        """The login (or the CLI's hand-off), unless a lock holds the user."""
        now = self._clock.now()
        with self._store.write() as uow:
            lock = lock_of_user(locks.in_force(uow.session, now), sign_in.user)
            if lock is None and pending.cli is not None:
                url = hand_off(uow, sign_in, pending.cli, now)
                return FinishedSignIn(None, url, pending.next_url, sign_in)
            if lock is None:
                issued = issue_token(uow, sign_in.user, source, now, self._token_ttl, sign_in)
                return FinishedSignIn(issued, None, pending.next_url, sign_in)
        self._refuse(sign_in.user, source, lock.message, Locked(lock.message))

    def _refuse(
        self, user: str | None, source: str, why: str, error: SekishoError | None = None
    ) -> NoReturn:
        refuse_idp_sign_in(self._store, self._clock, user, source, why, error)


def signed_in_again(sign_in: IdpSignIn, asked_at: datetime) -> bool:
    """Whether the ID token shows the person signed in after sekisho asked for it (OpenID
    Connect Core 3.1.2.1: with max_age the IdP must send auth_time), within the clock leeway."""
    leeway = timedelta(seconds=CLOCK_LEEWAY_S)
    return sign_in.auth_time is not None and sign_in.auth_time >= asked_at - leeway


def _error_code(error: str) -> str:
    """The IdP's error code as RFC 6749 spells them (letters, digits, _ . -), nothing else."""
    return re.sub(r"[^A-Za-z0-9_.-]", "", error)[:64] or "an error"


def sign_in_of(model: AccessModel, settings: OidcSettings, claims: dict[str, Any]) -> IdpSignIn:
    amr = claims.get("amr")
    acr = claims.get("acr")
    groups = groups_of_claims(settings, claims)
    return IdpSignIn(
        issuer=settings.issuer,
        subject=str(claims.get("sub", ""))[:256],
        user=user_of_claims(model, settings, claims, groups),
        auth_time=as_datetime(claims.get("auth_time")),
        amr=tuple(str(m)[:32] for m in amr) if isinstance(amr, list) else (),
        acr=acr[:256] if isinstance(acr, str) else None,
        groups=groups,
    )
