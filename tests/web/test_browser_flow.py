"""The web UI end to end in a real browser: sign in with TOTP, file, approve, watch, audit."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import timedelta

from playwright.sync_api import Locator, Page, expect
from web_support import Codes

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.store.tables import GrantRow


def nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def first_sign_in(page: Page, codes: Codes, name: str) -> None:
    """The first sign-in of an enrolled user: password, QR code, then a code from the app."""
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(codes.password(name))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Set up your authenticator")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    shown = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    assert shown == codes.secret(name)  # what the app would scan
    page.get_by_label("Password").fill(codes.password(name))
    page.get_by_label("Authenticator code").fill(codes.next_code(name))
    page.get_by_role("button", name="Sign in").click()


def test_request_approve_watch_expire_and_audit(
    core: Core,
    clock: ManualClock,
    codes: Codes,
    open_browser: Callable[..., Page],
    sign_in_browser: Callable[..., Page],
) -> None:
    # member01, never signed in before, follows a link: sign in first, then back to it.
    member = open_browser()
    member.goto("/requests/new")
    expect(member).to_have_url(re.compile(r"/signin\?next=/requests/new$"))
    first_sign_in(member, codes, "member01")
    expect(member).to_have_url(re.compile(r"/requests/new$"))

    # ... and files a request; the form offers only the group member01 may ask for.
    expect(member.get_by_label("Work group").locator("option")).to_have_text(
        ["ProdMemberWorkGroup"]
    )
    member.get_by_label("30m").check()
    member.get_by_label("Target").fill("payment admin console")
    member.get_by_label("Change content").fill("rotate the merchant API key")
    member.get_by_label("Rollback plan").fill("restore the previous key")
    member.get_by_label("ticket").fill("CHG-42")
    member.get_by_label("Justification").fill("Rotate the payment console API key")
    member.get_by_role("button", name="File request").click()
    expect(member).to_have_url(re.compile(r"/requests/1$"))
    expect(member.get_by_role("status")).to_have_text("Request #1 filed: pending approval.")
    expect(member.locator(".status-line")).to_contain_text("pending approval")
    expect(nav(member).get_by_role("link", name=re.compile(r"My requests"))).to_contain_text("1")

    # Nobody approves their own request: no button, and a forged POST is refused.
    expect(member.get_by_role("button", name="Approve")).to_have_count(0)
    expect(member.get_by_role("button", name="Cancel this request")).to_be_visible()
    token = member.locator("input[name=csrf]").first.get_attribute("value")
    forged = member.request.post(
        "/requests/1/approve", form={"csrf": token or "", "comment": "fine by me"}
    )
    assert forged.status == 403
    assert "Nobody approves their own request" in forged.text()

    # leader01 signs in on their own laptop, sees one request to approve, and approves it.
    leader = sign_in_browser("leader01")
    to_approve = nav(leader).get_by_role("link", name=re.compile(r"To approve"))
    expect(to_approve).to_contain_text("1")
    to_approve.click()
    leader.get_by_role("link", name="#1").click()
    expect(leader.locator(".prose").first).to_have_text("Rotate the payment console API key")
    expect(leader.locator("dl.facts").first).to_contain_text("payment admin console")
    expect(leader.locator("dl.facts").nth(1)).to_contain_text("CHG-42")
    leader.get_by_label("Comment").fill("OK, go ahead")
    leader.get_by_role("button", name="Approve").click()
    expect(leader.get_by_role("status")).to_have_text("You approved request #1: succeeded.")
    expect(leader.locator(".decisions")).to_contain_text("leader01 approved")
    expect(leader.locator(".decisions")).to_contain_text("OK, go ahead")
    expect(leader.locator(".timeline")).to_contain_text("grant #1 active until")

    # member01's open page follows by itself (htmx polling), without a reload.
    expect(member.locator(".status-line")).to_contain_text("succeeded", timeout=15_000)
    expect(member.locator(".timeline")).to_contain_text("approved at level 1: OK, go ahead")

    # Access now: the grant, counting down in the browser; times in the viewer's zone.
    nav(member).get_by_role("link", name="Access now").click()
    row = member.locator("tr.grant-active")
    expect(row).to_contain_text("ProdMemberWorkGroup")
    countdown = row.locator(".countdown")
    expect(countdown).to_have_text(re.compile(r"^(30m|29m \d+s) left$"))
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=5_000)  # it ticks
    until = row.locator("time").nth(1)
    expect(until).to_have_text(re.compile(r"GMT\+9"))  # Asia/Tokyo, the viewer's zone
    assert until.get_attribute("title") == "2026-11-29 09:30:00 UTC"  # UTC on hover

    # After the end, the scheduler's pass ends it; it moves to ended access, with why.
    clock.advance(timedelta(minutes=31))
    report = core.sweeper.run_due()
    assert report.expired == [1]
    member.reload()
    expect(member.locator("tr.grant-active")).to_have_count(0)
    expect(member.get_by_text("You hold no production access right now.")).to_be_visible()
    ended = member.locator("tr.grant-ended")
    expect(ended).to_contain_text("expired")
    expect(ended).to_contain_text("reached its end")
    with core.db.read() as s:
        assert s.get_one(GrantRow, 1).status == "expired"

    # The auditor sees the verified badge, filters by the request, and exports it.
    auditor = sign_in_browser("auditor01")
    nav(auditor).get_by_role("link", name="Audit").click()
    expect(auditor.locator(".verify-ok")).to_contain_text("Verified")
    auditor.get_by_label("Request #").fill("1")
    auditor.get_by_role("button", name="Search").click()
    expect(auditor).to_have_url(re.compile(r"request=1"))
    expect(auditor.locator("table.audit")).to_contain_text("request.approved")

    with auditor.expect_download() as csv_download:
        auditor.get_by_role("link", name="CSV").click()
    table = list(csv.DictReader(io.StringIO(csv_download.value.path().read_text("utf-8"))))
    actions = [r["action"] for r in table]
    assert actions[-1] == "request.filed"  # newest first
    assert {"request.filed", "request.approved", "grant.expired"} <= set(actions)
    assert {r["request_id"] for r in table} == {"1"}
    approved = next(r for r in table if r["action"] == "request.approved")
    assert approved["actor"] == "leader01"
    assert json.loads(approved["detail"])["comment"] == "OK, go ahead"

    with auditor.expect_download() as jsonl_download:
        auditor.get_by_role("link", name="JSON Lines").click()
    lines = jsonl_download.value.path().read_text("utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["action"] for e in entries] == actions
    assert all(len(e["hash"]) == 64 and e["request_id"] == 1 for e in entries)
