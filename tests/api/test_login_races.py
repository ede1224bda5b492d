"""Races over real HTTP with real threads: what one caller may do once stays once under load.

On PostgreSQL, transactions run side by side; these checks must hold there by row locks and
atomic updates, not because SQLite happens to serialise its writers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from login_support import LOGIN, at_once, client, login_body, served
from sqlalchemy import func, select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.store.tables import AuditRow, RequestRow, TokenRow
from support import INFO, People, code_for

ROUNDS = 3  # each round its own TOTP step; one lucky round must not hide the race


@pytest.fixture
def url(core: Core) -> Iterator[str]:
    with served(core) as base:
        yield base


def test_one_totp_code_gives_one_token_however_many_use_it_at_once(
    core: Core, clock: ManualClock, url: str
) -> None:
    password, secret = People(core).enroll("member01")
    with client(url) as http:
        for _ in range(ROUNDS):
            body = login_body("member01", password, code_for(core, secret))
            statuses = at_once(8, lambda _, b=body: http.post(LOGIN, json=b).status_code)
            assert statuses.count(200) == 1, statuses
            assert set(statuses) <= {200, 401, 429}  # the replays are refused, some throttled
            # The next round: a new TOTP step, and the replays' throttle has passed.
            clock.advance(core.settings.lockout_duration)
    with core.db.read() as s:
        assert s.scalar(select(func.count()).select_from(TokenRow)) == ROUNDS


def test_concurrent_wrong_passwords_all_count(core: Core, url: str) -> None:
    """40 guesses at once from one address: the address is throttled, every guess audited."""
    password, secret = People(core).enroll("member01")
    with client(url) as http:
        wrong = login_body("member01", "guess", "000000")
        statuses = at_once(40, lambda _: http.post(LOGIN, json=wrong).status_code)
        assert set(statuses) <= {401, 429}
        right = http.post(LOGIN, json=login_body("member01", password, code_for(core, secret)))
        assert right.status_code in (401, 429), right.text
    with core.db.read() as s:
        refusals = s.scalar(
            select(func.count())
            .select_from(AuditRow)
            .where(AuditRow.action.in_(("auth.login_failed", "auth.login_refused")))
        )
    assert refusals == 41


def test_identical_filings_at_once_open_one_request(core: Core, url: str) -> None:
    headers = People(core).headers("member01")
    body = {
        "template": "AddUserToGroup",
        "group": "ProdMemberWorkGroup",
        "reason": "fix the payment console",
        "for": "2h",
        "info": INFO,
    }
    with client(url) as http:
        statuses = at_once(
            8, lambda _: http.post("/api/v1/requests", json=body, headers=headers).status_code
        )
    assert sorted(statuses) == [201] + [409] * 7
    with core.db.read() as s:
        assert s.scalar(select(func.count()).select_from(RequestRow)) == 1
