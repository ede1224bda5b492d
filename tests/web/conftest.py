from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page
from web_support import Codes, csrf_of

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.server import build_app, create_app
from support import People, serving


@pytest.fixture
def people(core: Core) -> People:
    return People(core)


@pytest.fixture
def codes(core: Core, clock: ManualClock, people: People) -> Codes:
    return Codes(core, clock, people)


@pytest.fixture
def app_client(core: Core) -> Iterator[Callable[[], TestClient]]:
    """A fresh browser (its own cookies) per call, on one app."""
    app = create_app(core)
    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def sign_in(app_client: Callable[[], TestClient], codes: Codes) -> Callable[[str], TestClient]:
    """A browser signed in as NAME through the sign-in form."""

    def signed_in(name: str) -> TestClient:
        client = app_client()
        page = client.get("/signin")
        answer = client.post(
            "/signin",
            data={
                "csrf": csrf_of(page.text),
                "user": name,
                "password": codes.password(name),
                "code": codes.next_code(name),
                "next": "/",
            },
        )
        assert answer.status_code == 303, answer.text
        return client

    return signed_in


# -- a real browser against a real server ----------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never `playwright install`).

    Per module, not per session: while Playwright's sync API runs, the main thread has a
    running event loop, and later tests that call asyncio.run() would fail.
    """
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing: the web UI tests must run in CI")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def server(core: Core) -> Iterator[str]:
    """`sekisho serve`'s app on a real socket; the tests run the sweeper themselves."""
    with serving(build_app(core, scheduler=False)) as url:
        yield url


def _console_problem(message: ConsoleMessage, problems: list[str]) -> None:
    # A page answered with 4xx on purpose (a form sent back with its errors) is logged as a
    # failed load; anything else the console calls an error is a problem.
    expected = re.search(r"responded with a status of 4\d\d", message.text)
    if message.type == "error" and not expected:
        problems.append(f"console: {message.text}")


@pytest.fixture
def open_browser(browser: Browser, server: str) -> Iterator[Callable[..., Page]]:
    """A new browser context (its own cookies: one person's laptop) with one page.

    Any script error or console error (a CSP violation, a missing asset) fails the test.
    """
    contexts: list[BrowserContext] = []
    problems: list[str] = []

    def make(**options: object) -> Page:
        context = browser.new_context(
            base_url=server,
            locale="en-GB",
            timezone_id="Asia/Tokyo",
            accept_downloads=True,
            **options,  # type: ignore[arg-type]
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on("console", lambda message: _console_problem(message, problems))
        return page

    yield make
    for context in contexts:
        context.close()
    assert problems == []


@pytest.fixture
def sign_in_browser(open_browser: Callable[..., Page], codes: Codes) -> Callable[..., Page]:
    """A browser in which NAME signed in through the form, as a person would."""

    def signed_in(name: str, **options: object) -> Page:
        page = open_browser(**options)
        page.goto("/signin")
        page.get_by_label("User name").fill(name)
        page.get_by_label("Password").fill(codes.password(name))
        page.get_by_label("Authenticator code").fill(codes.next_code(name))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/requests/mine")
        return page

    return signed_in
