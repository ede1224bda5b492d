"""The CLI's half of signing in through the identity provider (`sekisho login --sso`).

The browser signs in as on the web (`idp_sign_in`), but the sign-in ends in a hand-off, not a
cookie: a one-time code, good for two minutes, sent to the CLI's loopback address (RFC
8252). `RedeemHandOff` trades it, with the PKCE verifier whose S256 challenge the CLI sent at
the start, for a login token; the token is made there, so the audit names the CLI's address
and a lock placed meanwhile still refuses it.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta
from typing import NoReturn

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import delete

from sekisho.clock import Clock
from sekisho.domain.errors import Locked, SekishoError
from sekisho.domain.identity import IssuedToken, token_id  # the SHA-256 a secret is kept as
from sekisho.domain.locks import lock_of_user
from sekisho.domain.sso import CliReturn, IdpSignIn
from sekisho.operations.sign_in import issue_token, refuse_idp_sign_in
from sekisho.store import directory, locks
from sekisho.store.tables import SignInHandOffRow
from sekisho.store.unit_of_work import Store, UnitOfWork

HANDOFF_TTL = timedelta(minutes=2)
MAX_CODE = 128
MAX_VERIFIER = 128  # RFC 7636: 43 to 128 characters


def hand_off(uow: UnitOfWork, sign_in: IdpSignIn, cli: CliReturn, now: datetime) -> str:
    """Keep the verified sign-in for the CLI; the loopback URL that carries its code."""
    code = secrets.token_urlsafe(32)
    uow.session.execute(delete(SignInHandOffRow).where(SignInHandOffRow.expires_at <= now))
    uow.session.add(
        SignInHandOffRow(
            id=token_id(code),
            challenge=cli.challenge,
            user=sign_in.user,
            issuer=sign_in.issuer,
            idp_subject=sign_in.subject,
            auth_time=sign_in.auth_time,
            amr=" ".join(sign_in.amr)[:256],
            acr=sign_in.acr,
            expires_at=now + HANDOFF_TTL,
        )
    )
    if sign_in.groups is not None:  # the IdP proved them now: standing groups follow
        directory.claimed_groups(uow.session, sign_in.user, sign_in.issuer, sign_in.groups, now)
    url: str = add_params_to_uri(cli.redirect_uri, [("code", code)])
    return url


class RedeemHandOff:
    def __init__(self, store: Store, clock: Clock, token_ttl: timedelta) -> None:
        self._store, self._clock, self._token_ttl = store, clock, token_ttl

    def execute(self, code: str, verifier: str, source: str) -> IssuedToken:
        """A login token for the hand-off's user; AuthenticationFailed (audited) unless the
        code is fresh and unused and the verifier is the one the CLI started with."""
        source, now = source[:256], self._clock.now()
        error: SekishoError | None = None
        with self._store.write() as uow:
            row = None
            if 0 < len(code) <= MAX_CODE:
                row = uow.session.get(SignInHandOffRow, token_id(code), with_for_update=True)
            if row is not None:
                uow.session.delete(row)  # good once: a wrong verifier burns it too
            why = _refusal(row, verifier, now)
            if why is None and row is not None:
                lock = lock_of_user(locks.in_force(uow.session, now), row.user)
                if lock is None:
                    return issue_token(uow, row.user, source, now, self._token_ttl, _of(row))
                why, error = lock.message, Locked(lock.message)
        self._refuse(row.user if row else None, source, why or "refused", error)

    def _refuse(
        self, user: str | None, source: str, why: str, error: SekishoError | None = None
    ) -> NoReturn:
        refuse_idp_sign_in(self._store, self._clock, user, source, why, error)


def _of(row: SignInHandOffRow) -> IdpSignIn:
    return IdpSignIn(
        issuer=row.issuer,
        subject=row.idp_subject,
        user=row.user,
        auth_time=row.auth_time,
        amr=tuple(row.amr.split()),
        acr=row.acr,
        groups=None,
    )


def _refusal(row: SignInHandOffRow | None, verifier: str, now: datetime) -> str | None:
    if row is None or row.expires_at <= now:
        return "this sign-in code expired or was used already; run sekisho login --sso again"
    if not 43 <= len(verifier) <= MAX_VERIFIER:
        return "the code verifier is not a PKCE verifier (43 to 128 characters)"
    if not hmac.compare_digest(create_s256_code_challenge(verifier), row.challenge):
        return "the code verifier does not match the one this sign-in started with"
    return None
