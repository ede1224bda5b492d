"""Signing in to the web UI through the company's identity provider: a real OpenID Provider
(oidc-provider, tests/oidc) and sekisho's own app, the browser's side driven over HTTP.

Each refusal is a test: a replayed or foreign callback, a person the model does not know, a
locked user, an expired, forged or misaddressed ID token, a nonce from another sign-in, a
provider that cannot be reached, a groups claim that is not a list.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from sqlalchemy import select
from sso_support import (
    ACR,
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLIENT,
    OTHER_SECRET,
    SECRET_ENV,
    identity_section,
    load_idp_model,
    open_callback,
    running_idp,
    sign_in_at_idp,
    start_cli_sign_in,
    start_sign_in,
)

import oidc_support
from oidc_support import TestProvider, new_signing_key
from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.domain.actor import Actor
from sekisho.domain.sso import OidcSettings
from sekisho.operations.idp_sign_in import PENDING_PER_ADDRESS, STATE_TTL
from sekisho.services.idp_sign_in import CALLBACK_PATH
from sekisho.sso.oidc import IdpRefused, OidcClient
from sekisho.store.tables import AuditRow, SignInStateRow, TokenRow
from support import EXAMPLE_TEXT, free_port

SECURITY = Actor("security01", "test")
OTHER_SECRET_ENV = "SEKISHO_TEST_OTHER_APP_SECRET"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestProvider]:
    with running_idp(tmp_path_factory.mktemp("idp"), [Settings().public_url]) as provider:
        yield provider


@pytest.fixture
def clock() -> ManualClock:
    """sekisho's clock at the real time: the IdP signs its tokens with the real time."""
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def sso_core(core: Core, idp: TestProvider, monkeypatch: pytest.MonkeyPatch) -> Core:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    load_idp_model(core, idp.issuer)
    return core


def audit(core: Core, action: str) -> list[AuditRow]:
    with core.db.read() as s:
        return list(s.scalars(select(AuditRow).where(AuditRow.action == action)))


def pending_sign_ins(core: Core) -> int:
    with core.db.read() as s:
        return len(list(s.scalars(select(SignInStateRow.id))))


def signed_in_as(browser: TestClient) -> str | None:
    page = browser.get("/requests/mine")
    if page.status_code != 200:
        return None
    return "member01" if "Member One" in page.text else "someone else"


# -- signing in ---------------------------------------------------------------------------------


def test_a_member_signs_in_through_the_idp_and_lands_where_they_were_going(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    browser = app_client()
    callback = sign_in_at_idp(browser, "member01", next_url="/requests/mine")
    answer = open_callback(browser, callback)
    assert answer.status_code == 200
    assert "Signed in as <strong>member01</strong> through Test IdP" in answer.text
    # The IdP sent the browser from its own site: the page moves on by itself, same-site,
    # so the SameSite=Strict session cookie goes with that next request.
    assert '<meta http-equiv="refresh" content="0;url=/requests/mine">' in answer.text
    assert signed_in_as(browser) == "member01"
    [login] = audit(sso_core, "auth.login")
    assert login.actor == "member01"
    detail = login.detail
    assert (detail["via"], detail["issuer"], detail["idp_subject"]) == (
        "oidc",
        sso_core.models.model().identity.oidc.issuer,  # type: ignore[union-attr]
        "member01",
    )
    assert (detail["amr"], detail["acr"]) == ("pwd mfa", ACR)
    assert detail["auth_time"] is not None
    with sso_core.db.read() as s:
        [token] = s.scalars(select(TokenRow))
    assert (token.auth_method, token.amr, token.acr) == ("oidc", "pwd mfa", ACR)
    assert pending_sign_ins(sso_core) == 0  # the state was used up


def test_a_person_in_a_group_the_model_admits_signs_in_by_the_idps_name(
    core: Core,
    idp: TestProvider,
    monkeypatch: pytest.MonkeyPatch,
    app_client: Callable[[], TestClient],
) -> None:
    """leader.one is not in the model, but in the IdP's "leads", which the model admits:
    they sign in as leader.one. The stranger is in no admitted group: refused, saying so."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    admit = "  admit:\n    idp_groups: [LEADS]\n"
    core.models.load(
        EXAMPLE_TEXT + identity_section(idp.issuer) + admit, "sso.yaml", Actor("admin01", "t")
    )
    browser = app_client()
    answer = open_callback(browser, sign_in_at_idp(browser, "leader.one"))
    assert answer.status_code == 200, answer.text
    assert "Signed in as <strong>leader.one</strong>" in answer.text
    assert core.models.model().user("leader.one") is not None
    other = app_client()
    refused = open_callback(other, sign_in_at_idp(other, "stranger"))
    assert refused.status_code == 401
    assert "is in none of the groups it admits" in refused.text


def test_the_groups_claim_fills_the_standing_group_that_names_it(
    core: Core,
    idp: TestProvider,
    monkeypatch: pytest.MonkeyPatch,
    app_client: Callable[[], TestClient],
) -> None:
    """member01's IdP groups are ["eng"]; the model's AuditGroup takes its members from ENG
    (names compare case-insensitively): from member01's sign-in on, they are an auditor."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    auditors = "  - name: AuditGroup\n    kind: standing\n    members: [auditor01]\n"
    mapped = EXAMPLE_TEXT.replace(auditors, auditors + "    idp_groups: [ENG]\n")
    assert mapped != EXAMPLE_TEXT
    core.models.load(mapped + identity_section(idp.issuer), "sso.yaml", Actor("admin01", "test"))
    assert not core.models.model().is_auditor("member01")
    browser = app_client()
    assert open_callback(browser, sign_in_at_idp(browser, "member01")).status_code == 200
    audit_group = core.models.model().group("AuditGroup")
    assert audit_group is not None
    assert audit_group.members == {"auditor01", "member01"}
    assert not core.models.model().is_auditor("member02")  # never signed in: no claim known


@pytest.mark.parametrize("target", ["//evil.example/x", "/\t/evil.example", "https://evil.example"])
def test_the_page_after_the_idp_never_moves_on_to_another_site(
    sso_core: Core, app_client: Callable[[], TestClient], target: str
) -> None:
    """The hand-over page moves on by a meta refresh, which a browser reads as a URL (tabs
    dropped): only a path on this site is ever put there."""
    browser = app_client()
    callback = sign_in_at_idp(browser, "member01", next_url=target)
    answer = open_callback(browser, callback)
    assert '<meta http-equiv="refresh" content="0;url=/">' in answer.text


def test_a_person_known_to_the_model_only_by_email_signs_in_as_that_user(
    sso_core: Core, idp: TestProvider, app_client: Callable[[], TestClient]
) -> None:
    load_idp_model(sso_core, idp.issuer, username_claim="email")
    browser = app_client()
    answer = open_callback(browser, sign_in_at_idp(browser, "leader.one"))
    assert "Signed in as <strong>leader01</strong>" in answer.text  # Leader01@ matched, any case


def test_an_email_the_idp_has_not_verified_names_nobody(
    sso_core: Core, idp: TestProvider, app_client: Callable[[], TestClient]
) -> None:
    load_idp_model(sso_core, idp.issuer, username_claim="email")
    browser = app_client()
    answer = open_callback(browser, sign_in_at_idp(browser, "leader.two"))
    assert answer.status_code == 401
    assert "has not verified &#39;leader02@example.com&#39; as your e-mail" in answer.text
    assert signed_in_as(browser) is None


def test_without_an_idp_in_the_model_the_sign_in_page_has_only_the_password_form(
    core: Core, app_client: Callable[[], TestClient]
) -> None:
    browser = app_client()
    page = browser.get("/signin")
    assert "Sign in with" not in page.text
    assert 'name="password"' in page.text
    device = browser.post("/api/v1/auth/sso/device")  # sekisho login --device
    assert device.status_code == 404
    assert device.json()["detail"] == "the model names no identity provider (identity.oidc)"


# -- refusals -----------------------------------------------------------------------------------


def test_a_callback_is_good_once(sso_core: Core, app_client: Callable[[], TestClient]) -> None:
    browser = app_client()
    callback = sign_in_at_idp(browser, "member01")
    assert open_callback(browser, callback).status_code == 200
    again = app_client()
    again.cookies.update(browser.cookies)  # even the very browser that used it
    replay = open_callback(again, callback)
    assert replay.status_code == 401
    assert "this sign-in expired or was used already; start again" in replay.text
    [refused] = audit(sso_core, "auth.sso_refused")
    assert refused.outcome == "denied"
    assert len(audit(sso_core, "auth.login")) == 1


def test_a_callback_opened_in_another_browser_is_refused_and_burnt(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    """Login CSRF: an attacker's own callback, opened in the victim's browser, must not sign
    the victim in as the attacker."""
    attacker, victim = app_client(), app_client()
    callback = sign_in_at_idp(attacker, "member01")
    answer = open_callback(victim, callback)
    assert answer.status_code == 401
    assert signed_in_as(victim) is None
    assert open_callback(attacker, callback).status_code == 401  # burnt by the attempt
    assert audit(sso_core, "auth.login") == []


def test_a_person_the_model_does_not_know_is_refused_with_the_reason(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    browser = app_client()
    answer = open_callback(browser, sign_in_at_idp(browser, "stranger"))
    assert answer.status_code == 401
    assert "&#39;stranger&#39; (preferred_username) is not a user in sekisho&#39;s model" in (
        answer.text
    )
    assert signed_in_as(browser) is None
    [refused] = audit(sso_core, "auth.sso_refused")
    assert "stranger" in str(refused.detail["reason"])


def test_a_locked_user_is_refused_with_the_lock(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    sso_core.locks.place(SECURITY, "user", "member01", "laptop stolen")
    browser = app_client()
    answer = open_callback(browser, sign_in_at_idp(browser, "member01"))
    assert answer.status_code == 403
    assert "locked by security01: laptop stolen" in answer.text
    assert signed_in_as(browser) is None


def test_an_expired_id_token_is_refused(
    sso_core: Core, clock: ManualClock, app_client: Callable[[], TestClient]
) -> None:
    browser = app_client()
    callback = sign_in_at_idp(browser, "member01")
    clock.advance(timedelta(minutes=5))  # the ID token lives 60 s; the sign-in 10 minutes
    answer = open_callback(browser, callback)
    assert answer.status_code == 401
    assert "the ID token was refused: The token is expired" in answer.text
    assert signed_in_as(browser) is None


def test_a_sign_in_left_too_long_at_the_idp_is_refused(
    sso_core: Core, clock: ManualClock, app_client: Callable[[], TestClient]
) -> None:
    browser = app_client()
    callback = sign_in_at_idp(browser, "member01")
    clock.advance(timedelta(minutes=11))
    answer = open_callback(browser, callback)
    assert "this sign-in expired or was used already" in answer.text


def test_the_idp_saying_no_is_shown_and_nothing_signs_in(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    browser = app_client()
    started = start_sign_in(browser)
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    answer = browser.get("/signin/oidc/callback", params={"state": state, "error": "access_denied"})
    assert answer.status_code == 401
    assert "the identity provider did not sign you in (access_denied)" in answer.text


def test_a_groups_claim_that_is_not_a_list_refuses_the_sign_in(
    sso_core: Core, idp: TestProvider, app_client: Callable[[], TestClient]
) -> None:
    load_idp_model(sso_core, idp.issuer, groups_claim="email")
    browser = app_client()
    answer = open_callback(browser, sign_in_at_idp(browser, "member01"))
    assert answer.status_code == 401
    assert "email claim is not a list of names" in answer.text


def test_an_unreachable_idp_is_said_and_nothing_is_stored(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    load_idp_model(sso_core, nobody)
    browser = app_client()
    answer = start_sign_in(browser)
    assert answer.status_code == 503
    assert f"the identity provider at {nobody} cannot be reached now" in answer.text
    assert pending_sign_ins(sso_core) == 0


def test_an_idp_that_goes_down_before_the_callback_refuses_the_sign_in_and_changes_nothing(
    sso_core: Core, idp: TestProvider, app_client: Callable[[], TestClient]
) -> None:
    browser = app_client()
    callback = sign_in_at_idp(browser, "member01")
    idp.stop()
    try:
        answer = open_callback(browser, callback)
    finally:
        idp.start()
    assert answer.status_code == 401
    assert "the identity provider cannot be reached now" in answer.text
    assert signed_in_as(browser) is None
    with sso_core.db.read() as s:
        assert list(s.scalars(select(TokenRow))) == []
    [refused] = audit(sso_core, "auth.sso_refused")
    assert refused.detail["reason"] == "the identity provider cannot be reached now"


def test_a_server_without_the_client_secret_says_so_before_the_browser_leaves(
    sso_core: Core, app_client: Callable[[], TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV)
    answer = start_sign_in(app_client())
    assert answer.status_code == 503
    assert f"{SECRET_ENV} is not set on the server" in answer.text
    assert CLIENT_SECRET not in answer.text
    assert pending_sign_ins(sso_core) == 0


def test_an_issuer_whose_discovery_names_another_issuer_is_refused(
    sso_core: Core, idp: TestProvider, app_client: Callable[[], TestClient]
) -> None:
    """The model says localhost; the provider's document says 127.0.0.1: a document that
    does not describe the issuer asked for is not believed (OpenID Discovery 4.3)."""
    load_idp_model(sso_core, idp.issuer.replace("127.0.0.1", "localhost"))
    answer = start_sign_in(app_client())
    assert answer.status_code == 503
    assert "does not describe the issuer http://localhost:" in answer.text
    assert pending_sign_ins(sso_core) == 0


def test_signing_keys_rotate_and_sign_ins_follow(
    sso_core: Core,
    idp: TestProvider,
    clock: ManualClock,
    app_client: Callable[[], TestClient],
) -> None:
    browser = app_client()
    assert open_callback(browser, sign_in_at_idp(browser, "member01")).status_code == 200
    idp.restart(keys=[new_signing_key("RS256")])
    clock.advance(timedelta(seconds=31))  # the JWKS is fetched again at most every 30 s
    after = app_client()
    assert open_callback(after, sign_in_at_idp(after, "member01")).status_code == 200
    assert len(audit(sso_core, "auth.login")) == 2


# -- the CLI's hand-off (sekisho login --sso) ----------------------------------------------------

LOOPBACK = "http://127.0.0.1:49152/cb-x1"


def _cli_code(browser: TestClient, login: str, verifier: str) -> str:
    """The browser's part of `sekisho login --sso`: the code it brings to the listener."""
    started = start_cli_sign_in(browser, LOOPBACK, verifier)
    back = open_callback(browser, sign_in_at_idp(browser, login, started=started))
    assert back.status_code == 303, back.text
    assert back.headers["location"].startswith(LOOPBACK + "?code=")
    return parse_qs(urlsplit(back.headers["location"]).query)["code"][0]


def _redeem(browser: TestClient, code: str, verifier: str) -> Any:
    return browser.post("/api/v1/auth/sso/token", json={"code": code, "code_verifier": verifier})


def test_the_cli_trades_its_code_and_verifier_for_a_token(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    browser, verifier = app_client(), secrets.token_urlsafe(48)
    code = _cli_code(browser, "member01", verifier)
    assert "sekisho_session" not in browser.cookies  # the browser is not signed in itself
    answer = _redeem(app_client(), code, verifier)
    assert answer.status_code == 200
    token = answer.json()["token"]
    me = app_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["user"] == "member01"
    assert (me["signed_in"]["via"], me["signed_in"]["amr"], me["signed_in"]["acr"]) == (
        "oidc",
        ["pwd", "mfa"],
        ACR,
    )
    assert me["signed_in"]["auth_time"] is not None
    [login] = audit(sso_core, "auth.login")
    assert (login.detail["via"], login.detail["amr"]) == ("oidc", "pwd mfa")


def test_a_cli_code_is_good_once_and_only_with_its_verifier(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    browser, verifier = app_client(), secrets.token_urlsafe(48)
    code = _cli_code(browser, "member01", verifier)
    wrong = _redeem(app_client(), code, secrets.token_urlsafe(48))
    assert wrong.status_code == 401
    assert "does not match" in wrong.json()["detail"]
    again = _redeem(app_client(), code, verifier)  # burnt by the wrong try
    assert again.status_code == 401
    assert "expired or was used already" in again.json()["detail"]
    assert audit(sso_core, "auth.login") == []
    assert len(audit(sso_core, "auth.sso_refused")) == 2


def test_a_refused_cli_sign_in_goes_back_to_the_cli_with_the_reason(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    """The terminal says why at once, instead of waiting for a code that will not come."""
    browser = app_client()
    started = start_cli_sign_in(browser, LOOPBACK, secrets.token_urlsafe(48))
    back = open_callback(browser, sign_in_at_idp(browser, "stranger", started=started))
    assert back.status_code == 303
    assert back.headers["location"].startswith(LOOPBACK + "?error=")
    [error] = parse_qs(urlsplit(back.headers["location"]).query)["error"]
    assert error.startswith("Sign-in refused: 'stranger' (preferred_username) is not a user")
    assert len(audit(sso_core, "auth.sso_refused")) == 1


def test_a_lock_placed_before_the_cli_trades_its_code_refuses_it(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    browser, verifier = app_client(), secrets.token_urlsafe(48)
    code = _cli_code(browser, "member01", verifier)
    sso_core.locks.place(SECURITY, "user", "member01", "laptop stolen")
    answer = _redeem(app_client(), code, verifier)
    assert answer.status_code == 403
    assert "locked by security01: laptop stolen" in answer.json()["detail"]


@pytest.mark.parametrize(
    "redirect",
    [
        "https://127.0.0.1:8000/cb",  # not plain http to the loopback address
        "http://evil.example.com:8000/cb",  # someone else's server
        "http://localhost:8000/cb",  # a name something else could answer for
        "http://127.0.0.1/cb",  # no port: not a CLI's listener
        "http://user@127.0.0.1:8000/cb",
    ],
)
def test_a_cli_start_that_would_send_the_code_elsewhere_is_refused(
    sso_core: Core, app_client: Callable[[], TestClient], redirect: str
) -> None:
    answer = start_cli_sign_in(app_client(), redirect, secrets.token_urlsafe(48))
    assert answer.status_code == 422
    assert "cli_redirect must be http://127.0.0.1:PORT/PATH" in answer.text
    assert pending_sign_ins(sso_core) == 0


def test_a_cli_start_with_a_challenge_that_is_not_s256_is_refused(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    params = {"cli_redirect": LOOPBACK, "cli_challenge": "plain-verifier"}
    answer = app_client().get("/signin/oidc", params=params)
    assert answer.status_code == 422
    assert "cli_challenge must be an S256 PKCE challenge" in answer.text


# -- the device grant (sekisho login --device) ---------------------------------------------------

DEVICE, DEVICE_TOKEN = "/api/v1/auth/sso/device", "/api/v1/auth/sso/device/token"


def test_a_device_sign_in_waits_for_the_person_then_gives_the_token(
    sso_core: Core, clock: ManualClock, app_client: Callable[[], TestClient]
) -> None:
    shell = app_client()
    started = shell.post(DEVICE).json()
    assert started["user_code"]
    assert started["verification_uri"].startswith(sso_core.models.model().identity.oidc.issuer)  # type: ignore[union-attr]
    handle = {"handle": started["handle"]}
    waiting = shell.post(DEVICE_TOKEN, json=handle)
    assert waiting.status_code == 202
    assert waiting.json() == {"status": "authorization_pending", "interval": started["interval"]}
    oidc_support.approve_device(started["verification_uri_complete"], "member01")
    too_soon = shell.post(DEVICE_TOKEN, json=handle)  # the IdP is not asked before its interval
    assert too_soon.status_code == 202
    clock.advance(timedelta(seconds=started["interval"]))
    done = shell.post(DEVICE_TOKEN, json=handle)
    assert done.status_code == 200
    assert done.json()["user"] == "member01"
    [login] = audit(sso_core, "auth.login")
    assert (login.detail["via"], login.detail["idp_subject"]) == ("oidc", "member01")
    again = shell.post(DEVICE_TOKEN, json=handle)  # the handle is used up
    assert again.status_code == 401
    assert "expired or ended" in again.json()["detail"]


def test_a_device_sign_in_by_a_person_the_model_does_not_know_is_refused(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    shell = app_client()
    started = shell.post(DEVICE).json()
    oidc_support.approve_device(started["verification_uri_complete"], "stranger")
    answer = shell.post(DEVICE_TOKEN, json={"handle": started["handle"]})
    assert answer.status_code == 401
    assert "'stranger' (preferred_username) is not a user" in answer.json()["detail"]
    assert audit(sso_core, "auth.login") == []


def test_a_device_sign_in_for_a_locked_user_is_refused_with_the_lock(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    shell = app_client()
    started = shell.post(DEVICE).json()
    oidc_support.approve_device(started["verification_uri_complete"], "member01")
    sso_core.locks.place(SECURITY, "user", "member01", "laptop stolen")
    answer = shell.post(DEVICE_TOKEN, json={"handle": started["handle"]})
    assert answer.status_code == 403
    assert "locked by security01: laptop stolen" in answer.json()["detail"]


def test_an_unknown_or_expired_device_handle_is_refused(
    sso_core: Core, clock: ManualClock, app_client: Callable[[], TestClient]
) -> None:
    shell = app_client()
    unknown = shell.post(DEVICE_TOKEN, json={"handle": "made-up"})
    assert unknown.status_code == 401
    started = shell.post(DEVICE).json()
    clock.advance(timedelta(minutes=31))  # past any device code's life
    expired = shell.post(DEVICE_TOKEN, json={"handle": started["handle"]})
    assert expired.status_code == 401
    assert "expired or ended" in expired.json()["detail"]


def test_a_device_sign_in_with_the_idp_down_says_so(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    load_idp_model(sso_core, f"http://127.0.0.1:{free_port()}")
    answer = app_client().post(DEVICE)
    assert answer.status_code == 503
    assert "cannot be reached now" in answer.json()["detail"]


# -- the ID token's checks, on tokens the IdP really issued -------------------------------------


def _id_token_for(core: Core, idp: TestProvider, client_id: str, nonce: str) -> str:
    """A real ID token from the IdP for `client_id` (sekisho or another app), with `nonce`."""
    other = client_id == OTHER_CLIENT
    redirect = "http://127.0.0.1:9/cb" if other else Settings().public_url + CALLBACK_PATH
    settings = OidcSettings(
        issuer=idp.issuer,
        client_id=client_id,
        client_secret_env=OTHER_SECRET_ENV if other else SECRET_ENV,
        scopes=("openid", "profile"),
    )
    client = OidcClient(core.clock, core.issuer_keys)
    verifier = secrets.token_urlsafe(48)
    url = client.authorization_url(settings, redirect, "any-state", nonce, verifier)
    callback = oidc_support.sign_in(url, "member01", redirect_uri_prefix=redirect)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    return str(client.exchange_code(settings, code, redirect, verifier)["id_token"])


def _settings(idp: TestProvider) -> OidcSettings:
    return OidcSettings(issuer=idp.issuer, client_id=CLIENT_ID, client_secret_env=SECRET_ENV)


def test_an_id_token_for_another_client_is_refused(
    sso_core: Core, idp: TestProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OTHER_SECRET_ENV, OTHER_SECRET)
    token = _id_token_for(sso_core, idp, OTHER_CLIENT, nonce="n-1")
    client = OidcClient(sso_core.clock, sso_core.issuer_keys)
    with pytest.raises(IdpRefused, match="aud"):
        client.verify_id_token(_settings(idp), token, nonce="n-1")


def test_an_id_token_from_another_sign_in_is_refused_by_its_nonce(
    sso_core: Core, idp: TestProvider
) -> None:
    token = _id_token_for(sso_core, idp, CLIENT_ID, nonce="the-first-sign-in")
    client = OidcClient(sso_core.clock, sso_core.issuer_keys)
    assert client.verify_id_token(_settings(idp), token, nonce="the-first-sign-in")["sub"]
    with pytest.raises(IdpRefused, match="nonce"):
        client.verify_id_token(_settings(idp), token, nonce="a-second-sign-in")


def test_an_id_token_signed_with_another_key_under_the_idps_key_id_is_refused(
    sso_core: Core, idp: TestProvider
) -> None:
    real = _id_token_for(sso_core, idp, CLIENT_ID, nonce="n-2")
    client = OidcClient(sso_core.clock, sso_core.issuer_keys)
    claims = client.verify_id_token(_settings(idp), real, nonce="n-2")
    header = jwt.decode(real, sso_core.issuer_keys.keys(idp.discovery()["jwks_uri"], None)).header
    forger = RSAKey.generate_key(2048, parameters={"kid": header["kid"]}, private=True)
    forged = jwt.encode({"alg": "RS256", "kid": header["kid"]}, claims, forger)
    with pytest.raises(IdpRefused, match="signature"):
        client.verify_id_token(_settings(idp), forged, nonce="n-2")
    # HS256 with the client secret: anyone who holds the secret could sign that.
    symmetric = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(CLIENT_SECRET.encode()))
    with pytest.raises(IdpRefused):
        client.verify_id_token(_settings(idp), symmetric, nonce="n-2")


# -- sign-ins in flight are capped per address -------------------------------------------------


def test_an_address_with_too_many_sign_ins_in_flight_is_refused_and_nothing_more_is_stored(
    sso_core: Core, clock: ManualClock, app_client: Callable[[], TestClient]
) -> None:
    """Each start is a row until it comes back or expires: one address cannot fill the store
    (nor make sekisho ask the IdP for device codes without end)."""
    browser = app_client()
    for _ in range(PENDING_PER_ADDRESS):
        assert browser.get("/signin/oidc").status_code == 303
    refused = browser.get("/signin/oidc")
    assert refused.status_code == 429
    assert "too many sign-ins in flight from this address" in refused.text
    assert pending_sign_ins(sso_core) == PENDING_PER_ADDRESS
    for _ in range(PENDING_PER_ADDRESS):
        assert browser.post(DEVICE).status_code == 200
    capped = browser.post(DEVICE)
    assert capped.status_code == 429
    assert "too many sign-ins in flight" in capped.json()["detail"]
    clock.advance(STATE_TTL + timedelta(seconds=1))  # the first ones expire: room again
    assert browser.get("/signin/oidc").status_code == 303
