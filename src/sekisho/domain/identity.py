"""Who a caller is: what enrolment hands out, what a sign-in issues, and when a login ends.

Tokens are random, stored only as their SHA-256 (`token_id`), short-lived and revocable;
`login_end` is the one set of rules every reader of tokens applies (the API and the web, one
token at a time; the gateway, for many live sessions at once).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sekisho.domain.access import AccessModel

TOKEN_PREFIX = "sks_"
ISSUER = "sekisho"  # the authenticator app's name for the account
REFUSAL = "wrong user, password or code"  # every refused sign-in, whatever was wrong


@dataclass(frozen=True)
class Enrolment:
    user: str
    password: str
    totp_secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class IssuedToken:
    token: str
    user: str
    expires_at: datetime


@dataclass(frozen=True)
class LoginProof:
    """How a login was proven, when the identity provider proved it: what its ID token said."""

    method: str  # "oidc"
    auth_time: datetime | None
    amr: tuple[str, ...]
    acr: str | None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    token_id: str
    expires_at: datetime
    proof: LoginProof | None = None  # None: password + TOTP


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_a_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and len(token) <= 200


class LoginEnd(StrEnum):
    """Why a login token no longer holds."""

    REVOKED = "revoked"  # logged out, re-enrolled, or never issued
    EXPIRED = "expired"
    USER_GONE = "user_gone"  # no longer in the access model


def login_end(
    user: str | None,
    revoked_at: datetime | None,
    expires_at: datetime | None,
    model: AccessModel,
    now: datetime,
) -> LoginEnd | None:
    """Why the token whose stored row has these fields no longer holds (None: it holds;
    `user` None: no such token)."""
    if user is None or revoked_at is not None or expires_at is None:
        return LoginEnd.REVOKED
    if expires_at <= now:
        return LoginEnd.EXPIRED
    if model.user(user) is None:
        return LoginEnd.USER_GONE
    return None


def login_ended(
    user: str | None,
    revoked_at: datetime | None,
    expires_at: datetime | None,
    model: AccessModel,
    now: datetime,
) -> str | None:
    """`login_end` in the words a forwarder shows when its session ends for it."""
    ended = login_end(user, revoked_at, expires_at, model, now)
    if ended is None:
        return None
    return {
        LoginEnd.REVOKED: "the login that opened it ended: revoked (logged out or re-enrolled)",
        LoginEnd.EXPIRED: "your login expired; log in again",
        LoginEnd.USER_GONE: "this user is no longer in the access model",
    }[ended]
