"""Signing in through a real OpenID Provider against a real `sekisho serve`.

In Chromium: the "Sign in with Test IdP" link, the IdP's own login and consent pages, and
back to the page asked for, signed in. The IdP sends the browser back from its own site; the
session cookie is SameSite=Strict, so this proves the callback's same-site hand-over works in
a real browser, not only over HTTP.

From a shell: `sekisho login --sso` (the real CLI, a process of its own) prints the URL, the
browser's part is played over HTTP, and the CLI's loopback listener receives the code and
trades it for a token that `sekisho whoami` then uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sso_support import CLIENT_SECRET, IDP_NAME, SECRET_ENV, load_idp_model, running_idp

import oidc_support
from oidc_support import TestProvider
from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.server import build_app
from sekisho.services.idp_sign_in import CALLBACK_PATH
from support import free_port, serving

PORT = free_port()  # sekisho's public URL is fixed before the IdP registers its callback
BASE = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestProvider]:
    with running_idp(tmp_path_factory.mktemp("idp"), [BASE]) as provider:
        yield provider


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", login_failure_delay=0, public_url=BASE)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def served(core: Core, idp: TestProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`sekisho serve` at BASE, its model naming the test IdP; yields the IdP's issuer."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    load_idp_model(core, idp.issuer)
    with serving(build_app(core, scheduler=False), port=PORT):
        yield idp.issuer


def _sekisho(config_dir: Path, *args: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "SEKISHO_SERVER": BASE, "SEKISHO_CONFIG_DIR": str(config_dir)}
    command = [str(Path(sys.executable).parent / "sekisho"), *args]
    return subprocess.Popen(
        command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _printed_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("  http"):
            return line.strip()
    raise AssertionError(f"the CLI printed no URL; it said: {process.communicate()}")


def test_sekisho_login_sso_signs_the_shell_in_through_the_browser(
    served: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    login = _sekisho(home, "login", "--sso", "--no-browser")
    try:
        url = _printed_url(login)
        assert url.startswith(f"{BASE}/signin/oidc?cli_redirect=http%3A%2F%2F127.0.0.1%3A")
        with httpx.Client(follow_redirects=False, timeout=10) as browser:
            started = browser.get(url)
            location = started.headers["location"]
            callback = oidc_support.sign_in(
                location, "member01", redirect_uri_prefix=BASE + CALLBACK_PATH
            )
            back = browser.get(callback)
            assert back.status_code == 303
            page = browser.get(back.headers["location"])  # the CLI's listener
        assert "return to the terminal" in page.text
        out, err = login.communicate(timeout=30)
    finally:
        login.kill()
    assert login.returncode == 0, err
    assert "logged in as member01" in out
    whoami = _sekisho(home, "whoami")
    out, err = whoami.communicate(timeout=30)
    assert whoami.returncode == 0, err
    assert out.startswith("member01 (Member One)")
    assert "signed in through the identity provider (pwd, mfa) at " in out


def test_sekisho_login_sso_says_at_once_why_the_sign_in_was_refused(
    served: str, tmp_path: Path
) -> None:
    login = _sekisho(tmp_path / "home", "login", "--sso", "--no-browser")
    try:
        url = _printed_url(login)
        with httpx.Client(follow_redirects=False, timeout=10) as browser:
            location = browser.get(url).headers["location"]
            callback = oidc_support.sign_in(
                location, "stranger", redirect_uri_prefix=BASE + CALLBACK_PATH
            )
            page = browser.get(browser.get(callback).headers["location"])  # the listener
        assert "Sign-in refused: &#x27;stranger&#x27; (preferred_username)" in page.text
        out, err = login.communicate(timeout=30)
    finally:
        login.kill()
    assert login.returncode != 0
    assert "'stranger' (preferred_username) is not a user in sekisho's model" in err + out


@pytest.mark.realtime  # the CLI waits the IdP's polling interval (5 s) for real
def test_sekisho_login_device_signs_a_headless_shell_in_with_a_code(
    served: str, tmp_path: Path
) -> None:
    login = _sekisho(tmp_path / "home", "login", "--device", "--print-env")
    try:
        assert login.stderr is not None
        first = login.stderr.readline()
        assert first.startswith(f"to sign in, open {served}/device in any browser")
        complete = login.stderr.readline().split("or open: ", 1)[1].strip()
        oidc_support.approve_device(complete, "member01")
        out, err = login.communicate(timeout=60)
    finally:
        login.kill()
    assert login.returncode == 0, err
    assert out.startswith("export SEKISHO_TOKEN=sks_")
    assert f"export SEKISHO_SERVER={BASE}" in out


def test_a_member_signs_in_with_the_idp_in_chromium_and_lands_on_their_requests(
    served: str, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{BASE}/requests/mine")
    expect(page).to_have_url(f"{BASE}/signin?next=/requests/mine")
    page.get_by_role("link", name=f"Sign in with {IDP_NAME}").click()
    page.wait_for_url(f"{served}/interaction/**")
    page.fill("input[name=login]", "member01")
    page.fill("input[name=password]", "any")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # the IdP's consent page
    page.wait_for_url(f"{BASE}/requests/mine")
    expect(page.get_by_role("heading", name="My requests")).to_be_visible()
    assert "sekisho_session" in {c["name"] for c in context.cookies(BASE)}
    context.close()
