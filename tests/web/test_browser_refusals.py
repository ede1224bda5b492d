"""What the browser must not get: pages without signing in, forged forms, admin actions."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from web_support import seed_story

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.store.tables import GrantRow, RequestRow, TokenRow

# The browser adds nothing per backend here; the end-to-end flow runs on both.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

PAGES = [
    "/",
    "/requests/mine",
    "/requests/to-approve",
    "/requests/new",
    "/requests/1",
    "/access",
    "/sessions",
    "/audit",
    "/model",
]


def csrf_token(page: Page) -> str:
    return page.locator("input[name=csrf]").first.get_attribute("value") or ""


def test_every_page_sends_a_stranger_to_sign_in(open_browser: Callable[..., Page]) -> None:
    page = open_browser()
    for path in PAGES:
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/signin(\?next=.*)?$"))
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/requests/1")
    expect(page).to_have_url(re.compile(r"/signin\?next=/requests/1$"))


def test_posts_without_the_csrf_token_are_refused(
    core: Core, sign_in_browser: Callable[..., Page]
) -> None:
    page = sign_in_browser("member01")
    page.goto("/requests/new")
    form = {
        "template": "AddUserToGroup",
        "group": "ProdMemberWorkGroup",
        "end": "1h",
        "reason": "no token",
        "info.target": "t",
        "info.change": "c",
        "info.rollback": "r",
    }
    real = csrf_token(page)
    tampered = real[:-1] + ("1" if real.endswith("0") else "0")  # never the real one
    for token in (None, "0" * 64, tampered):
        data = form if token is None else {**form, "csrf": token}
        refused = page.request.post("/requests/new", form=data)
        assert refused.status == 403
        assert "security token" in refused.text()
    with core.db.read() as s:
        assert s.scalar(select(func.count()).select_from(RequestRow)) == 0

    assert page.request.post("/signout", form={}).status == 403
    with core.db.read() as s:  # still signed in: the token was not revoked
        assert s.scalar(select(TokenRow.revoked_at)) is None

    filed = page.request.post("/requests/new", form={**form, "csrf": csrf_token(page)})
    assert filed.ok  # the same form with its token goes through
    with core.db.read() as s:
        assert s.scalar(select(func.count()).select_from(RequestRow)) == 1


def test_only_admins_get_kill_and_revoke(
    core: Core, clock: ManualClock, sign_in_browser: Callable[..., Page]
) -> None:
    story = seed_story(core, clock)
    grant_id = story["grant"]
    session_id = story["session"]

    # An auditor sees everything but may end nothing: no buttons, and forged posts refused.
    auditor = sign_in_browser("auditor01")
    auditor.goto("/sessions")
    expect(auditor.locator(f"tr[data-session='{session_id}']")).to_be_visible()
    expect(auditor.get_by_role("button", name=re.compile("Kill"))).to_have_count(0)
    auditor.goto("/access")
    expect(auditor.get_by_role("button", name="Revoke")).to_have_count(0)
    token = csrf_token(auditor)
    killed = auditor.request.post(f"/sessions/{session_id}/kill", form={"csrf": token})
    assert killed.status == 403
    assert "only admins may kill" in killed.text()
    revoked = auditor.request.post(
        f"/grants/{grant_id}/revoke", form={"csrf": token, "reason": "just because"}
    )
    assert revoked.status == 403
    assert "only admins may revoke grants" in revoked.text()

    # A leader (an approver, not an admin) cannot revoke either.
    leader = sign_in_browser("leader01")
    leader.goto(f"/requests/{story['current']}")
    expect(leader.get_by_role("button", name=re.compile("Revoke"))).to_have_count(0)
    refused = leader.request.post(
        f"/grants/{grant_id}/revoke", form={"csrf": csrf_token(leader), "reason": "no"}
    )
    assert refused.status == 403
    with core.db.read() as s:
        assert s.get_one(GrantRow, grant_id).status == "active"

    # The admin has both buttons, and they work.
    admin = sign_in_browser("admin01")
    admin.goto("/sessions")
    admin.get_by_role("button", name=f"Kill #{session_id}").click()
    expect(admin.get_by_role("status")).to_contain_text(f"Session #{session_id} of member01")
    admin.goto("/access")
    admin.get_by_label(f"Why revoke grant #{grant_id}").fill("incident closed")
    admin.get_by_role("button", name="Revoke").click()
    expect(admin.get_by_role("status")).to_contain_text(f"Grant #{grant_id} of member01 revoked")
    with core.db.read() as s:
        grant = s.get_one(GrantRow, grant_id)
        assert (grant.status, grant.end_reason, grant.end_note) == (
            "revoked",
            "revoked",
            "incident closed",
        )
