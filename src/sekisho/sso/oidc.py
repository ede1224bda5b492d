"""sekisho as an OpenID Connect relying party: discovery, the authorization URL (PKCE S256,
state, nonce), the code exchange, and the ID token checked.

The protocol is Authlib's (the authorization URL with its PKCE challenge, the token request's
body, the ID token's claims: iss, aud, exp, iat, nonce, azp, at_hash) and joserfc's (the
signature), sent with sekisho's one HTTP client (httpx: TLS verified, no redirects followed).
sekisho adds what a relying party must decide for itself: the issuer in the
discovery document must be the configured one exactly, every URL is https (or http on
loopback), the signing keys follow rotation (`IssuerKeys`), the clock is sekisho's, and what
the IdP said goes back to the user as a clear sentence, never as its raw error page.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from authlib.common.urls import add_params_to_qs
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError

from sekisho.clock import Clock
from sekisho.domain.sso import OidcSettings
from sekisho.jose.issuer_keys import IssuerKeys, KeysUnavailable, NotASignedToken, kid_of
from sekisho.notify.base import USER_AGENT, get_json, safe_transport, tls_context

TIMEOUT_S = 10.0
METADATA_FRESH_S = 3600.0  # the discovery document is asked again after this
CLOCK_LEEWAY_S = 60  # between sekisho's clock and the IdP's
# Asymmetric only: an HS256 ID token would be signed with the client secret, which a
# relying party should never accept as proof of the IdP.
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SIGNING_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")


class IdpUnavailable(Exception):
    """The identity provider cannot be used now (unreachable, misconfigured); safe to show."""


class IdpRefused(Exception):
    """The identity provider's answer does not sign anyone in; safe to show. `error`: the
    OAuth error code the IdP answered with, when it did."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class ProviderMetadata:
    """What sekisho uses of the IdP's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    device_authorization_endpoint: str | None
    signing_algs: tuple[str, ...]


class OidcClient:
    """One relying party for the model's OpenID provider; the discovery document is kept."""

    def __init__(
        self, clock: Clock, keys: IssuerKeys, environ: Mapping[str, str] | None = None
    ) -> None:
        self._clock, self._keys, self._environ = clock, keys, environ
        self._metadata: dict[str, tuple[float, ProviderMetadata]] = {}
        self._lock = threading.Lock()

    def metadata(self, settings: OidcSettings) -> ProviderMetadata:
        """The IdP's endpoints from its discovery document (kept an hour). Fetched outside
        the lock: an IdP that does not answer holds up no other sign-in's read of the cache."""
        now = self._clock.now().timestamp()
        with self._lock:
            cached = self._metadata.get(settings.issuer)
        if cached and now - cached[0] < METADATA_FRESH_S:
            return cached[1]
        found = _discover(settings.issuer)
        with self._lock:
            self._metadata[settings.issuer] = (now, found)
        return found

    def authorization_url(
        self,
        settings: OidcSettings,
        redirect_uri: str,
        state: str,
        nonce: str,
        verifier: str,
        *,
        fresh: bool = False,
    ) -> str:
        """Where the browser goes to sign in: code flow, PKCE S256, state and nonce; refused
        before the browser leaves when the server lacks the client secret. `fresh`: the IdP
        must sign the person in again, whatever session it has (max_age=0, prompt=login)."""
        self._secret(settings)
        endpoint = self.metadata(settings).authorization_endpoint
        again = {"max_age": "0", "prompt": "login"} if fresh else {}
        url: str = prepare_grant_uri(
            endpoint,
            settings.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=" ".join(settings.scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
            **again,
        )
        return url

    def redeem(
        self, settings: OidcSettings, code: str, redirect_uri: str, verifier: str, nonce: str
    ) -> dict[str, Any]:
        """The code exchanged for tokens at the IdP; the ID token's claims once its signature
        and claims check out; IdpRefused or IdpUnavailable naming what did not."""
        tokens = self.exchange_code(settings, code, redirect_uri, verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise IdpRefused("the identity provider sent no ID token (is openid in scopes?)")
        return self.verify_id_token(settings, id_token, nonce, tokens.get("access_token"))

    def exchange_code(
        self, settings: OidcSettings, code: str, redirect_uri: str, verifier: str
    ) -> dict[str, Any]:
        """The token endpoint's answer for an authorization code (its ID token unchecked)."""
        body = prepare_token_request(
            "authorization_code", redirect_uri=redirect_uri, code=code, code_verifier=verifier
        )
        return self.post_form(settings, self.metadata(settings).token_endpoint, body)

    def post_form(self, settings: OidcSettings, endpoint: str, body: str) -> dict[str, Any]:
        """POST a form to one of the IdP's endpoints (token, device authorization) with the
        client's authentication (RFC 6749 2.3); its JSON answer, or IdpRefused with the
        OAuth error code it answered."""
        secret = self._secret(settings)
        auth = None
        if secret is None:
            body = add_params_to_qs(body, [("client_id", settings.client_id)])
        else:  # client_secret_basic: both parts form-encoded first (RFC 6749 2.3.1)
            auth = httpx.BasicAuth(quote(settings.client_id, safe=""), quote(secret, safe=""))
        try:
            response = httpx.post(
                endpoint,
                content=body,
                auth=auth,
                timeout=TIMEOUT_S,
                verify=tls_context(None),
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT, "Accept": "application/json", **_FORM},
            )
            answer = response.json()
        except (httpx.HTTPError, ValueError):
            raise IdpUnavailable("the identity provider cannot be reached now") from None
        if not isinstance(answer, dict):
            raise IdpUnavailable("the identity provider's token endpoint answered nonsense")
        if response.status_code != 200 or "error" in answer:
            error = str(answer.get("error", response.status_code))[:64]
            raise IdpRefused(f"the identity provider refused the sign-in ({error})", error)
        return answer

    def verify_id_token(
        self,
        settings: OidcSettings,
        id_token: str,
        nonce: str | None,
        access_token: object = None,
    ) -> dict[str, Any]:
        """The ID token's claims, once signed by the issuer's key and meant for this client,
        now, for this sign-in (its nonce; None for the device grant, which sends none)."""
        meta = self.metadata(settings)
        token = self._decoded(meta, id_token)
        params: dict[str, object] = {"nonce": nonce, "client_id": settings.client_id}
        if isinstance(access_token, str):
            params["access_token"] = access_token
        options = {
            "iss": {"essential": True, "value": settings.issuer},
            "aud": {"essential": True, "value": settings.client_id},
        }
        claims = CodeIDToken(token.claims, token.header, options, params)
        try:
            claims.validate(now=int(self._clock.now().timestamp()), leeway=CLOCK_LEEWAY_S)
        except JoseError as exc:
            raise IdpRefused(f"the ID token was refused: {_claim_problem(exc)}") from None
        return dict(token.claims)

    def _decoded(self, meta: ProviderMetadata, id_token: str) -> Any:
        algs = [a for a in meta.signing_algs if a in SIGNING_ALGS] or ["RS256"]
        try:
            keys = self._keys.keys(meta.jwks_uri, kid_of(id_token))
            return jwt.decode(id_token, keys, algorithms=algs)
        except NotASignedToken:
            raise IdpRefused("the ID token is not a signed JWT") from None
        except KeysUnavailable as exc:
            raise IdpUnavailable(f"the identity provider's keys: {exc}") from None
        except (JoseError, ValueError):
            raise IdpRefused("the ID token's signature is not the identity provider's") from None

    def _secret(self, settings: OidcSettings) -> str | None:
        if settings.client_secret_env is None:
            return None
        environ = self._environ if self._environ is not None else os.environ
        secret = environ.get(settings.client_secret_env)
        if not secret:
            raise IdpUnavailable(
                f"sign-in through the identity provider is not set up: "
                f"{settings.client_secret_env} is not set on the server"
            )
        return secret


def _discover(issuer: str) -> ProviderMetadata:
    """The discovery document (OpenID Connect Discovery 1.0), its issuer the configured one."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        document = get_json(url, TIMEOUT_S)
    except (httpx.HTTPError, ValueError):
        raise IdpUnavailable(f"the identity provider at {issuer} cannot be reached now") from None
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise IdpUnavailable(
            f"{url} does not describe the issuer {issuer} (check identity.oidc.issuer)"
        )
    return _metadata_of(issuer, document)


def _metadata_of(issuer: str, document: dict[str, Any]) -> ProviderMetadata:
    device = document.get("device_authorization_endpoint")
    algs = document.get("id_token_signing_alg_values_supported")
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=_endpoint(document, "authorization_endpoint"),
        token_endpoint=_endpoint(document, "token_endpoint"),
        jwks_uri=_endpoint(document, "jwks_uri"),
        device_authorization_endpoint=_endpoint(document, "device_authorization_endpoint")
        if device is not None
        else None,
        signing_algs=tuple(a for a in algs if isinstance(a, str)) if isinstance(algs, list) else (),
    )


def _endpoint(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not safe_transport(value):
        raise IdpUnavailable(f"the identity provider's {key} is missing or not https")
    return value


def _claim_problem(exc: JoseError) -> str:
    """Which claim failed, in joserfc's words ("The token is expired", "Invalid claim: 'aud'")."""
    return (exc.description or exc.error or type(exc).__name__)[:200]


def as_datetime(value: object) -> datetime | None:
    """A NumericDate claim (auth_time) as a time; None if absent or not a number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
