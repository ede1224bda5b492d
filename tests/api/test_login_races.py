"""Races over real HTTP with real threads: what one caller may do once stays once under load.

On PostgreSQL, transactions run side by side; these checks must hold there by row locks and
atomic updates, not because SQLite happens to serialise its writers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from login_support import at_once, client, served
from sqlalchemy import func, select

from sekisho.services.core import Core
from sekisho.store.tables import RequestRow
from support import INFO, People


@pytest.fixture
def url(core: Core) -> Iterator[str]:
    with served(core) as base:
        yield base


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
