"""Screenshots of every page, taken in the real browser; the README and docs show them.

They go to a temporary folder, so a test run leaves the tree as it was; `make screenshots`
sets SEKISHO_SCREENSHOTS to write them to docs/screenshots.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page
from web_support import Codes, seed_story

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.store.tables import UserRow

LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
FIXED_SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SEKISHO_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page: Page, folder: Path, name: str, *, full: bool = True) -> None:
    page.wait_for_load_state("networkidle")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full, animations="disabled")


def test_screenshots_of_every_page(
    core: Core,
    clock: ManualClock,
    codes: Codes,
    open_browser: Callable[..., Page],
    sign_in_browser: Callable[..., Page],
    shots: Path,
) -> None:
    story = seed_story(core, clock)

    # A fixed TOTP seed for the QR screenshot, so the picture is the same on every run.
    password, _ = codes.people.enroll("auditor01")
    with core.db.write() as s:
        s.get_one(UserRow, "auditor01").totp_secret = core.secrets.seal(FIXED_SEED)
    codes.people.secrets["auditor01"] = (password, FIXED_SEED)

    guest = open_browser(viewport=LAPTOP)
    guest.goto("/signin")
    shoot(guest, shots, "signin", full=False)
    guest.get_by_label("User name").fill("auditor01")
    guest.get_by_label("Password").fill(codes.password("auditor01"))
    guest.get_by_role("button", name="Sign in").click()
    guest.get_by_role("heading", name="Set up your authenticator").wait_for()
    shoot(guest, shots, "first-sign-in-qr", full=False)

    member = sign_in_browser("member01", viewport=LAPTOP)
    shoot(member, shots, "my-requests")
    member.goto("/requests/new")
    shoot(member, shots, "new-request")
    member.get_by_label("Target").fill("payment admin console")
    member.get_by_label("Change content").fill("rotate the merchant API key")
    member.get_by_label("Rollback plan").fill("restore the previous key")
    member.get_by_label("Justification").fill("Quarterly key rotation")
    member.get_by_label("ticket").fill("change 12")
    member.get_by_label("until…").check()
    member.get_by_label("End", exact=True).fill("2026-11-30T09:00")
    member.get_by_role("button", name="File request").click()
    member.locator(".form-summary").wait_for()
    shoot(member, shots, "new-request-errors")
    member.goto(f"/requests/{story['current']}")
    shoot(member, shots, "request")
    member.goto("/access")
    shoot(member, shots, "access-now")

    phone = sign_in_browser("member01", viewport=PHONE, is_mobile=True, has_touch=True)
    phone.goto(f"/requests/{story['current']}")
    shoot(phone, shots, "request-phone")

    leader = sign_in_browser("leader01", viewport=LAPTOP)
    leader.goto("/requests/to-approve")
    shoot(leader, shots, "to-approve")
    leader.goto(f"/requests/{story['waiting']}")
    shoot(leader, shots, "request-to-decide")

    admin = sign_in_browser("admin01", viewport=LAPTOP)
    admin.goto("/sessions")
    shoot(admin, shots, "sessions")
    admin.goto("/audit")
    admin.locator(".verify-ok").wait_for()
    shoot(admin, shots, "audit", full=False)
    admin.goto("/model")
    shoot(admin, shots, "model")
    admin.locator("figure.picture").screenshot(path=str(shots / "model-picture.png"))

    assert {p.stem for p in shots.glob("*.png")} >= {
        "signin",
        "first-sign-in-qr",
        "my-requests",
        "new-request",
        "new-request-errors",
        "request",
        "access-now",
        "request-phone",
        "to-approve",
        "request-to-decide",
        "sessions",
        "audit",
        "model",
        "model-picture",
    }
