"""Signing in through the web: the cookie, CSRF on the form, vague failures, first sign-in."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from web_support import Codes, csrf_of

from sekisho.bootstrap import Core
from sekisho.store.tables import AuditRow, TokenRow

VAGUE = "Sign-in failed: check your user name, password and code."


def post_sign_in(client: TestClient, **fields: str) -> httpx.Response:
    page = client.get("/signin")
    return client.post("/signin", data={"csrf": csrf_of(page.text), **fields})


def last_audit(core: Core) -> AuditRow:
    with core.db.read() as s:
        row = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).one()
        return row


def test_the_session_cookie_is_locked_down_and_expires_with_the_token(
    app_client: Callable[[], TestClient], codes: Codes
) -> None:
    client = app_client()
    answer = post_sign_in(
        client,
        user="member01",
        password=codes.password("member01"),
        code=codes.next_code("member01"),
        next="/requests/7?x=1",
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/requests/7?x=1"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("sekisho_session=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "max-age=3600" in cookie.lower()  # the token's lifetime
    assert "secure" not in attributes  # plain HTTP here; HTTPS adds it
    assert client.get("/requests/mine").status_code == 200


def test_the_cookie_is_secure_on_https(core: Core, codes: Codes) -> None:
    from sekisho.server import create_app

    with TestClient(
        create_app(core), base_url="https://sekisho.example", follow_redirects=False
    ) as client:
        answer = post_sign_in(
            client,
            user="member01",
            password=codes.password("member01"),
            code=codes.next_code("member01"),
        )
        cookie = answer.headers["set-cookie"]
        assert "; secure" in cookie.lower()


def test_a_sign_in_form_without_its_token_is_refused(
    app_client: Callable[[], TestClient], codes: Codes, core: Core
) -> None:
    client = app_client()
    client.get("/signin")  # the pre-session cookie, but no token in the form
    answer = client.post(
        "/signin",
        data={"user": "member01", "password": codes.password("member01"), "code": "123456"},
    )
    assert answer.status_code == 403
    with core.db.read() as s:
        assert s.scalar(select(TokenRow.id)) is None


def test_failures_get_one_vague_message_and_keep_the_services_rules(
    app_client: Callable[[], TestClient], codes: Codes, core: Core
) -> None:
    client = app_client()
    password = codes.password("member01")
    for fields in (
        {"user": "member01", "password": "wrong", "code": codes.next_code("member01")},
        {"user": "member01", "password": password, "code": "000000"},
        {"user": "nobody", "password": "x", "code": "123456"},
    ):
        answer = post_sign_in(client, **fields)
        assert answer.status_code == 401
        assert VAGUE in answer.text
        assert "sekisho_session" not in answer.headers.get("set-cookie", "")
        assert last_audit(core).action == "auth.login_failed"
    for _ in range(3):  # five failures lock the account; the page still says the same
        post_sign_in(client, user="member01", password="wrong", code="123456")
    locked = post_sign_in(
        client, user="member01", password=password, code=codes.next_code("member01")
    )
    assert locked.status_code == 401
    assert VAGUE in locked.text
    assert last_audit(core).action == "auth.login_refused"


def test_first_sign_in_shows_the_qr_code_once(
    app_client: Callable[[], TestClient], codes: Codes, core: Core
) -> None:
    client = app_client()
    password = codes.password("member02")
    shown = post_sign_in(client, user="member02", password=password, code="")
    assert shown.status_code == 200
    page = shown.text
    assert 'aria-label="QR code for your authenticator app"' in page
    assert codes.secret("member02")[:4] in page
    assert shown.headers["cache-control"] == "no-store"
    assert last_audit(core).action == "auth.totp_setup"

    wrong = post_sign_in(client, user="member02", password="wrong", code="")
    assert wrong.status_code == 401
    assert 'aria-label="QR code' not in wrong.text

    signed_in = post_sign_in(
        client, user="member02", password=password, code=codes.next_code("member02")
    )
    assert signed_in.status_code == 303
    # Once a code was accepted, the secret is never shown again, whatever the password.
    again = post_sign_in(app_client(), user="member02", password=password, code="")
    assert again.status_code == 401
    assert VAGUE in again.text
    assert codes.secret("member02")[:4] not in again.text


def test_signing_out_revokes_the_token(sign_in: Callable[[str], TestClient], core: Core) -> None:
    client = sign_in("member01")
    token = client.cookies.get("sekisho_session")
    assert token
    page = client.get("/requests/mine")
    out = client.post("/signout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    assert out.headers["location"] == "/signin"
    with core.db.read() as s:
        assert s.scalar(select(TokenRow.revoked_at)) is not None
    # The old cookie is worthless now, even if a copy of it survived.
    stale = TestClient(client.app, follow_redirects=False, cookies={"sekisho_session": token})
    assert stale.get("/requests/mine").status_code == 303


def test_next_never_leaves_the_site(app_client: Callable[[], TestClient], codes: Codes) -> None:
    for target in (
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",  # a browser drops the tab: //evil.example
        "/\n/evil.example",
        "/ /evil.example",
    ):
        answer = post_sign_in(
            app_client(),
            user="leader01",
            password=codes.password("leader01"),
            code=codes.next_code("leader01"),
            next=target,
        )
        assert answer.headers["location"] == "/"
