"""Step-up through the identity provider: a template asks approvers for a multi-factor sign-in
within 5 minutes; "sign in again" sends them to the real OpenID Provider with max_age=0 and
prompt=login, and sekisho takes the new login only if its auth_time shows a new sign-in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sso_support import (
    CLIENT_SECRET,
    SECRET_ENV,
    identity_section,
    open_callback,
    running_idp,
    sign_in_at_idp,
)
from web_support import csrf_of

from oidc_support import TestProvider
from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.store.tables import AuditRow, TokenRow
from support import ADMIN, MEMBER, MEMBER2, draft, example_with_step_up


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
    identity = identity_section(idp.issuer, username_claim="email")
    text = example_with_step_up("{within: 5m, factor: mfa}") + identity
    core.models.load(text, "step-up-sso.yaml", ADMIN)
    return core


def approve(browser: TestClient, request_id: int) -> tuple[int, str]:
    page = browser.get(f"/requests/{request_id}")
    answer = browser.post(
        f"/requests/{request_id}/approve", data={"csrf": csrf_of(page.text), "comment": "ok"}
    )
    return answer.status_code, answer.text


def audit(core: Core, action: str) -> list[AuditRow]:
    with core.db.read() as s:
        return list(s.scalars(select(AuditRow).where(AuditRow.action == action)))


def test_a_fresh_mfa_sign_in_at_the_idp_lets_the_approval_act(
    sso_core: Core, app_client: Callable[[], TestClient]
) -> None:
    request = sso_core.workflow.file(MEMBER, draft())
    browser = app_client()
    # "Sign in again": sekisho asks the IdP for a new sign-in, whatever session it has.
    started = browser.get("/signin/oidc", params={"fresh": "true"})
    asked = parse_qs(urlsplit(started.headers["location"]).query)
    assert (asked["max_age"], asked["prompt"]) == (["0"], ["login"])
    callback = sign_in_at_idp(browser, "leader.one", started=started)
    back = open_callback(browser, callback)
    assert back.status_code == 200, back.text
    status, _ = approve(browser, request.id)
    assert status == 303
    [approved] = audit(sso_core, "request.approved")
    assert approved.actor == "leader01"
    assert approved.detail["step_up"] == "idp-mfa"


def test_an_approval_after_the_idp_sign_in_went_stale_is_refused_saying_how(
    sso_core: Core, app_client: Callable[[], TestClient], clock: ManualClock
) -> None:
    request = sso_core.workflow.file(MEMBER2, draft())
    browser = app_client()
    assert open_callback(browser, sign_in_at_idp(browser, "leader.one")).status_code == 200
    clock.advance(timedelta(minutes=6))  # the sign-in is no longer fresh
    status, page = approve(browser, request.id)
    assert status == 403
    assert "Confirm it is you first" in page
    assert "sign in again with Test IdP" in page
    assert "sekisho login --sso --fresh" in page


def test_a_step_up_the_idp_did_not_redo_signs_nobody_in(
    sso_core: Core, app_client: Callable[[], TestClient], clock: ManualClock
) -> None:
    """An ID token whose auth_time is older than the step-up sekisho asked for, as from an IdP
    that ignored max_age: sekisho asks 90 s after the IdP's sign-in by its clock (the token
    itself is still in date, within the clock leeway)."""
    browser = app_client()
    clock.advance(timedelta(seconds=90))
    started = browser.get("/signin/oidc", params={"fresh": "true"})
    with sso_core.db.read() as s:
        tokens_before = len(list(s.scalars(select(TokenRow.id))))
    refused = open_callback(browser, sign_in_at_idp(browser, "leader.one", started=started))
    assert refused.status_code == 401
    assert "did not sign you in again" in refused.text
    with sso_core.db.read() as s:
        assert len(list(s.scalars(select(TokenRow.id)))) == tokens_before
    assert [r.detail["reason"] for r in audit(sso_core, "auth.sso_refused")] == [
        "the identity provider did not sign you in again (its auth_time is older)"
    ]
