"""Passkeys in a real browser: Chromium's virtual authenticator (CDP WebAuthn domain) registers
a passkey on the Passkeys page and asserts it before the approve button acts; an approval
without one is refused.

Browsers refuse an IP address as a WebAuthn RP ID, so this server is opened at `localhost`
(its public URL too), as a person would open a sekisho whose public URL is a loopback address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import CDPSession, Page, expect
from web_support import Codes

from sekisho.bootstrap import Core
from sekisho.config import Settings
from sekisho.domain.requests import RequestStatus
from sekisho.server import build_app
from sekisho.store.tables import AuditRow, RequestRow
from support import ADMIN, MEMBER, draft, example_with_step_up, free_port, serving


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"http://localhost:{free_port()}"
    return Settings(data_dir=tmp_path / "data", login_failure_delay=0, public_url=url)


@pytest.fixture
def server(core: Core) -> Iterator[str]:
    with serving(build_app(core, scheduler=False), port_of(core)):
        yield core.settings.public_url


def port_of(core: Core) -> int:
    port = urlsplit(core.settings.public_url).port
    assert port is not None
    return port


CEREMONY_MS = 30_000


def virtual_authenticator(page: Page) -> tuple[CDPSession, str]:
    """A platform authenticator that verifies the user (as a fingerprint would) at once."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options: dict[str, Any] = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, added["authenticatorId"]


def status_of(core: Core, request_id: int) -> str:
    with core.db.read() as s:
        return s.get_one(RequestRow, request_id).status


def test_a_passkey_is_added_then_asked_for_before_the_approval_acts(
    core: Core, sign_in_browser: Callable[..., Page]
) -> None:
    text = example_with_step_up("{within: 5m, factor: passkey}")
    core.models.load(text, "step-up.yaml", ADMIN)
    request = core.workflow.file(MEMBER, draft())
    leader = sign_in_browser("leader01")

    # No passkey yet: the form says what is needed, and the approval is refused.
    leader.goto(f"/requests/{request.id}")
    expect(leader.locator("#step-up-hint")).to_contain_text("Approving needs a passkey")
    leader.get_by_role("button", name="Approve").click()
    expect(leader.get_by_role("heading", name="Confirm it is you first")).to_be_visible()
    expect(leader.locator("main")).to_contain_text("register one under Passkeys")
    assert status_of(core, request.id) == RequestStatus.PENDING_APPROVAL

    # leader01 adds a passkey (the virtual authenticator stands in for the laptop's).
    cdp, authenticator = virtual_authenticator(leader)
    leader.goto("/passkeys")
    leader.get_by_label("Name").fill("work laptop")
    leader.get_by_role("button", name="Add a passkey").click()
    # The ceremony is two round trips and the authenticator's work: give a busy machine time.
    expect(leader.locator("tr[data-passkey]")).to_contain_text("work laptop", timeout=CEREMONY_MS)
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(stored["credentials"]) == 1

    # Now the button asserts the passkey first, and then the approval acts.
    leader.goto(f"/requests/{request.id}")
    leader.get_by_role("button", name="Confirm with passkey and approve").click()
    expect(leader.get_by_role("status")).to_contain_text(
        f"You approved request #{request.id}", timeout=CEREMONY_MS
    )
    assert status_of(core, request.id) == RequestStatus.SUCCEEDED
    with core.db.read() as s:
        approved = s.query(AuditRow).filter(AuditRow.action == "request.approved").one()
    assert approved.detail["step_up"] == "passkey"
    used = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert used["credentials"][0]["signCount"] >= 1


def test_a_page_opened_at_an_address_says_where_passkeys_work(
    core: Core, open_browser: Callable[..., Page], codes: Codes
) -> None:
    port = port_of(core)
    page, here = open_browser(), f"http://127.0.0.1:{port}"
    page.goto(f"{here}/signin")
    page.get_by_label("User name").fill("leader01")
    page.get_by_label("Password").fill(codes.password("leader01"))
    page.get_by_label("Authenticator code").fill(codes.next_code("leader01"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/requests/mine")
    virtual_authenticator(page)
    page.goto(f"{here}/passkeys")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("[data-passkey-status]")).to_have_text(
        re.compile(rf"Passkeys for sekisho live at http://localhost:{port}")
    )
    expect(page.locator("tr[data-passkey]")).to_have_count(0)
