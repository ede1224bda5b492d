"""Sign-in throttling through the HTTP API: attackers slow down, the real user does not.

Each client has its own address (TestClient's `client=`), which the server takes as the
caller's, as uvicorn takes it from the socket. member01's own machine is HOME.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from login_support import LOGIN, login_body
from sqlalchemy import func, select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.server import create_app
from sekisho.store.tables import AuditRow
from support import People, code_for

HOME = "198.51.100.7"
ATTACKER = "203.0.113.66"
SOURCE_THRESHOLD = 12
USER_THRESHOLD = 10

From = Callable[[str], TestClient]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        login_failure_delay=0,
        login_source_threshold=SOURCE_THRESHOLD,
        login_user_threshold=USER_THRESHOLD,
    )


@pytest.fixture
def from_address(core: Core) -> Iterator[From]:
    """A client at a given address, one per address, all on one app."""
    app = create_app(core)
    clients: dict[str, TestClient] = {}

    def at(address: str) -> TestClient:
        if address not in clients:
            clients[address] = TestClient(
                app, raise_server_exceptions=False, client=(address, 40000)
            )
            clients[address].__enter__()
        return clients[address]

    yield at
    for opened in clients.values():
        opened.__exit__(None, None, None)


@pytest.fixture
def member(core: Core) -> tuple[str, str]:
    return People(core).enroll("member01")


def sign_in(
    http: TestClient, core: Core, member: tuple[str, str], *, step: int = 0
) -> httpx.Response:
    password, secret = member
    return http.post(LOGIN, json=login_body("member01", password, code_for(core, secret, step)))


def guess(http: TestClient, user: str = "member01") -> httpx.Response:
    return http.post(LOGIN, json=login_body(user, "hunter2", "123456"))


def next_step(clock: ManualClock) -> None:
    clock.advance(timedelta(seconds=30))  # each TOTP code is good once


def refusals(core: Core) -> int:
    with core.db.read() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(AuditRow)
                .where(AuditRow.action.in_(("auth.login_failed", "auth.login_refused")))
            )
            or 0
        )


def test_an_attacker_cannot_lock_member01_out_of_their_own_address(
    core: Core, clock: ManualClock, from_address: From, member: tuple[str, str]
) -> None:
    assert sign_in(from_address(HOME), core, member).status_code == 200
    attacker = from_address(ATTACKER)
    answers = [guess(attacker).status_code for _ in range(30)]
    threshold = core.settings.lockout_threshold
    assert answers == [401] * threshold + [429] * (30 - threshold)  # the attacker is throttled
    # ...even with the right password, should they have it.
    next_step(clock)
    assert sign_in(attacker, core, member).status_code == 429

    next_step(clock)
    at_home = sign_in(from_address(HOME), core, member)
    assert at_home.status_code == 200, at_home.text
    assert refusals(core) == 31  # every refusal audited


def test_many_addresses_guessing_one_name_slow_down_strangers_but_not_the_user(
    core: Core, clock: ManualClock, from_address: From, member: tuple[str, str]
) -> None:
    assert sign_in(from_address(HOME), core, member).status_code == 200
    answers = [guess(from_address(f"203.0.113.{i}")).status_code for i in range(USER_THRESHOLD + 2)]
    # One guess each, so no address is throttled on its own; but the name slows down.
    assert answers == [401] * USER_THRESHOLD + [429] * 2

    stranger = from_address("192.0.2.50")
    assert sign_in(stranger, core, member).status_code == 429  # for everyone new...
    # ...but not at home (the next step's code: this one was used, and time stands still).
    assert sign_in(from_address(HOME), core, member, step=1).status_code == 200

    clock.advance(core.settings.lockout_duration)
    assert sign_in(stranger, core, member).status_code == 200  # and the pause ends


def test_one_address_trying_many_names_is_throttled(
    core: Core, clock: ManualClock, from_address: From, member: tuple[str, str]
) -> None:
    sprayer = from_address(ATTACKER)
    answers = [guess(sprayer, f"ghost{i}").status_code for i in range(SOURCE_THRESHOLD + 3)]
    assert answers == [401] * SOURCE_THRESHOLD + [429] * 3
    assert sign_in(sprayer, core, member).status_code == 429
    assert sign_in(from_address(HOME), core, member).status_code == 200


def test_unknown_and_known_names_get_byte_identical_answers(
    core: Core, from_address: From, member: tuple[str, str]
) -> None:
    """The sixth answer and every other: nothing tells a real name from an unknown one."""

    def answers(user: str, address: str) -> list[tuple[int, list[tuple[str, str]], bytes]]:
        http = from_address(address)
        return [
            (r.status_code, sorted(r.headers.items()), r.content)
            for r in (guess(http, user) for _ in range(8))
        ]

    known, unknown = answers("member01", "203.0.113.10"), answers("nobody", "203.0.113.11")
    assert known == unknown
    assert [status for status, _, _ in known] == [401] * 5 + [429] * 3
    assert b"nobody" not in b"".join(body for _, _, body in unknown)


def test_the_web_sign_in_shares_the_throttle(
    core: Core, clock: ManualClock, from_address: From, member: tuple[str, str]
) -> None:
    """Guesses through the API throttle the web sign-in from there, and only from there."""
    attacker = from_address(ATTACKER)
    for _ in range(core.settings.lockout_threshold):
        guess(attacker)
    password, secret = member

    def web_sign_in(http: TestClient, with_code: bool) -> httpx.Response:
        page = http.get("/signin")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = {"csrf": csrf, "user": "member01", "password": password}
        if with_code:
            form["code"] = code_for(core, secret)
        return http.post("/signin", data=form, follow_redirects=False)

    refused = web_sign_in(attacker, with_code=True)
    assert refused.status_code == 401
    assert "Sign-in failed" in refused.text
    first_sign_in = web_sign_in(attacker, with_code=False)  # no code: the QR code page
    assert first_sign_in.status_code == 401
    assert "otpauth" not in first_sign_in.text
    assert web_sign_in(from_address(HOME), with_code=False).status_code == 200  # the QR code
    assert web_sign_in(from_address(HOME), with_code=True).status_code == 303  # signed in
