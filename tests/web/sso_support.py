"""sekisho signing in through a real OpenID Provider (tests/oidc): the provider as the tests
configure it, the model section that names it, and the web sign-in driven without a browser."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi.testclient import TestClient
from httpx import Response

import oidc_support
from oidc_support import TestProvider
from sekisho.bootstrap import Core
from sekisho.domain.actor import Actor
from sekisho.services.idp_sign_in import CALLBACK_PATH
from support import EXAMPLE_TEXT

CLIENT_ID = "sekisho"
CLIENT_SECRET = "test-client-secret-not-for-production"
SECRET_ENV = "SEKISHO_TEST_OIDC_CLIENT_SECRET"
OTHER_CLIENT = "another-app"  # a client of the same IdP that is not sekisho
OTHER_SECRET = "another-app-secret"
IDP_NAME = "Test IdP"
AMR = ["pwd", "mfa"]
ACR = "urn:example:loa:2"
IDP_LINK = re.compile(r'<a class="button primary" rel="nofollow" href="([^"]+)">([^<]+)</a>')
ID_TOKEN_TTL_S = 60  # short, so an expired ID token needs minutes, not hours, of clock

# People at the IdP: the model's member01, leader01 (by e-mail only), leader02 (an e-mail the
# IdP has not verified), and a stranger.
ACCOUNTS = {
    "member01": {"email": "member01@example.com", "name": "Member One", "groups": ["eng"]},
    "leader.one": {"email": "Leader01@example.com", "name": "Leader One", "groups": ["leads"]},
    "leader.two": {"email": "leader02@example.com", "email_verified": False, "groups": []},
    "stranger": {"email": "stranger@example.org", "name": "Not In The Model", "groups": []},
}


def client_metadata(client_id: str, secret: str, redirect_uris: list[str]) -> dict[str, object]:
    return {
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }


@contextmanager
def running_idp(tmp_dir: Path, base_urls: list[str]) -> Iterator[TestProvider]:
    """The provider, with sekisho as a client whose callback is under each of `base_urls`."""
    oidc_support.require_provider()
    redirects = [url.rstrip("/") + CALLBACK_PATH for url in base_urls]
    clients = [
        client_metadata(CLIENT_ID, CLIENT_SECRET, redirects),
        client_metadata(OTHER_CLIENT, OTHER_SECRET, ["http://127.0.0.1:9/cb"]),
    ]
    ttl = {"IdToken": ID_TOKEN_TTL_S}
    with TestProvider(tmp_dir, clients, ACCOUNTS, ttl=ttl, amr=AMR, acr=ACR) as provider:
        yield provider


def identity_section(issuer: str, **fields: str) -> str:
    """The model's `identity` section naming the provider at `issuer`."""
    settings = {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret_env": SECRET_ENV,
        "scopes": "[openid, profile, email, groups]",
        "groups_claim": "groups",
        "display_name": IDP_NAME,
        **fields,
    }
    body = "".join(f"    {key}: {value}\n" for key, value in settings.items())
    return "\nidentity:\n  oidc:\n" + body


def load_idp_model(core: Core, issuer: str, **fields: str) -> None:
    text = EXAMPLE_TEXT + identity_section(issuer, **fields)
    core.models.load(text, "sso.yaml", Actor("admin01", "test"))


def start_cli_sign_in(browser: TestClient, redirect: str, verifier: str) -> Response:
    """What `sekisho login --sso` opens: the start, naming its listener and PKCE challenge."""
    challenge = create_s256_code_challenge(verifier)
    params = {"cli_redirect": redirect, "cli_challenge": challenge}
    return browser.get("/signin/oidc", params=params)


def start_sign_in(browser: TestClient, next_url: str = "/") -> Response:
    """Follow "Sign in with Test IdP" on the sign-in page: the answer (303 to the IdP)."""
    page = browser.get("/signin", params={"next": next_url})
    link = re.search(
        r'<a class="button primary" rel="nofollow" href="([^"]+)">([^<]+)</a>', page.text
    )
    assert link is not None
    assert link.group(2) == f"Sign in with {IDP_NAME}"
    return browser.get(html.unescape(link.group(1)))


def sign_in_at_idp(
    browser: TestClient, login: str, next_url: str = "/", started: Response | None = None
) -> str:
    """Start at sekisho (or from `started`), sign in at the IdP as `login`: the callback URL
    (not yet opened)."""
    started = started or start_sign_in(browser, next_url)
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    redirect_uri = parse_qs(urlsplit(location).query)["redirect_uri"][0]
    return oidc_support.sign_in(location, login, redirect_uri_prefix=redirect_uri)


def open_callback(browser: TestClient, callback_url: str) -> Response:
    """The browser arriving back from the IdP at sekisho's callback."""
    parts = urlsplit(callback_url)
    return browser.get(f"{parts.path}?{parts.query}")
