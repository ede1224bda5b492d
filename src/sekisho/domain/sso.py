"""Signing in through the company's identity provider (OpenID Connect): what the model says,
and who a verified ID token is in sekisho's model.

The model names one OpenID provider. Its ID token's `username_claim` names the sekisho user:
a user of the model by that name, or (for an e-mail claim) the user whose `email` it is. A
person the model does not know is refused with the reason; an IdP never creates users.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sekisho.domain.errors import InvalidInput
from sekisho.domain.text import NAME

if TYPE_CHECKING:  # the model holds these settings: imported for types only
    from sekisho.domain.access import AccessModel

DEFAULT_SCOPES = ("openid", "profile", "email")
DEFAULT_USERNAME_CLAIM = "preferred_username"
MAX_CLAIM_LENGTH = 256
MAX_GROUPS = 1_000  # Entra ID sends at most 200 in a token; Okta's groups claim, 100


@dataclass(frozen=True)
class OidcSettings:
    issuer: str  # exactly as the ID token's `iss`
    client_id: str
    client_secret_env: str | None = None  # None: a public client (PKCE alone)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    username_claim: str = DEFAULT_USERNAME_CLAIM
    groups_claim: str | None = None
    display_name: str = ""  # the sign-in button's "Sign in with <display_name>"

    @property
    def button_label(self) -> str:
        return f"Sign in with {self.display_name or 'your identity provider'}"


@dataclass(frozen=True)
class IdentitySettings:
    oidc: OidcSettings | None = None  # None: password + TOTP only
    # People the IdP puts in any of these groups (case-folded) are sekisho users too, by the
    # name the IdP gives them, though the model does not list them.
    admit_idp_groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class IdpSignIn:
    """A verified ID token, as sekisho keeps it on the login it opens and in the audit."""

    issuer: str
    subject: str  # the IdP's `sub`
    user: str  # the sekisho user it names
    auth_time: datetime | None
    amr: tuple[str, ...]
    acr: str | None
    groups: tuple[str, ...] | None  # None: the model names no groups claim


class UnknownPerson(Exception):
    """The ID token names nobody the model knows; the text says why (safe to show)."""


def model_user_named(model: AccessModel, value: str) -> str | None:
    """The model user an IdP's name for someone means: a user by that name, or the one user
    whose e-mail it is (case-insensitive). None: nobody, or more than one by that e-mail."""
    if model.user(value) is not None:
        return value
    if "@" in value:
        wanted = value.casefold()
        by_email = [u.name for u in model.users if u.email and u.email.casefold() == wanted]
        if len(by_email) == 1:
            return by_email[0]
    return None


def user_of_claims(
    model: AccessModel,
    settings: OidcSettings,
    claims: dict[str, Any],
    groups: tuple[str, ...] | None = None,
) -> str:
    """The model user the claims name; someone the model does not list, by the claim's
    value, if `groups` (their groups claim) holds a group the model admits; else
    UnknownPerson."""
    value = claims.get(settings.username_claim)
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_LENGTH:
        raise UnknownPerson(
            f"the identity provider's answer has no {settings.username_claim} to name you by"
        )
    if settings.username_claim == "email" and claims.get("email_verified") is False:
        raise UnknownPerson(f"the identity provider has not verified {value!r} as your e-mail")
    found = model_user_named(model, value)
    if found is not None:
        return found
    if admits(model, value, groups or ()):
        return value
    raise UnknownPerson(
        f"{value!r} ({settings.username_claim}) is not a user in sekisho's model"
        + (" and is in none of the groups it admits" if model.identity.admit_idp_groups else "")
        + "; ask an admin to add you"
    )


def admits(model: AccessModel, name: str, groups: Iterable[str]) -> bool:
    """Whether someone the model does not list is a user by `name`: the model admits one of
    their IdP groups, and the name is one sekisho can hold (letters, digits, ._@+-)."""
    wanted = model.identity.admit_idp_groups
    return (
        bool(wanted)
        and NAME.fullmatch(name) is not None
        and any(g.casefold() in wanted for g in groups)
    )


def groups_of_claims(settings: OidcSettings, claims: dict[str, Any]) -> tuple[str, ...] | None:
    """The groups claim as a list of names (None when the model names none); UnknownPerson
    when it is not a list of text."""
    if settings.groups_claim is None:
        return None
    value = claims.get(settings.groups_claim, [])
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise UnknownPerson(
            f"the identity provider's {settings.groups_claim} claim is not a list of names"
        )
    # Kept per user at each sign-in: bounded, so a token cannot make sekisho store anything.
    if len(value) > MAX_GROUPS or any(len(g) > MAX_CLAIM_LENGTH for g in value):
        raise UnknownPerson(
            f"the identity provider's {settings.groups_claim} claim holds more than "
            f"{MAX_GROUPS} groups, or a name longer than {MAX_CLAIM_LENGTH} characters"
        )
    return tuple(value)


@dataclass(frozen=True)
class CliReturn:
    """Where a sign-in the CLI started goes back to (its loopback listener), and the S256
    challenge of the PKCE verifier only the CLI holds."""

    redirect_uri: str
    challenge: str


_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_LOOPBACK_URI = 512


def read_cli_return(redirect: str | None, challenge: str | None) -> CliReturn | None:
    """The CLI's return address and challenge, checked: an http URL to the loopback address
    by IP literal with a port (RFC 8252 7.3 and 8.3), and an S256 challenge. None: a
    browser's own sign-in."""
    if not redirect and not challenge:
        return None
    if not redirect or not challenge:
        raise InvalidInput.one(
            "cli_redirect", "required", "cli_redirect and cli_challenge go together"
        )
    try:
        parts = urlsplit(redirect)
        port = parts.port
    except ValueError:
        port, parts = None, urlsplit("")
    if (
        len(redirect) > MAX_LOOPBACK_URI
        or parts.scheme != "http"
        or parts.hostname not in ("127.0.0.1", "::1")
        or port is None
        or parts.username is not None
        or parts.fragment
    ):
        raise InvalidInput.one(
            "cli_redirect",
            "loopback_redirect",
            "cli_redirect must be http://127.0.0.1:PORT/PATH or http://[::1]:PORT/PATH: the "
            "CLI's own listener on this machine (RFC 8252)",
        )
    if not _CHALLENGE.fullmatch(challenge):
        raise InvalidInput.one(
            "cli_challenge",
            "pkce_challenge",
            "cli_challenge must be an S256 PKCE challenge (43 base64url characters)",
        )
    return CliReturn(redirect, challenge)
