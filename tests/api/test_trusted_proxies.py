"""X-Forwarded-For and X-Forwarded-Proto count only from the proxies named in
SEKISHO_TRUSTED_PROXIES (none by default). Any other client, even one on 127.0.0.1, cannot
choose the address the audit trail records, nor make the cookies Secure or not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.config import Settings
from sekisho.server import build_app
from sekisho.store.tables import AuditRow
from support import People, serving

FORGED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


@pytest.fixture
def trusted() -> str:
    return ""  # the default: no proxy is trusted


@pytest.fixture
def settings(tmp_path: Path, trusted: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        login_failure_delay=0,
        end_retry_first=timedelta(seconds=2),
        trusted_proxies=trusted,
    )


@pytest.fixture
def url(core: Core) -> Iterator[str]:
    """The app on a real socket, run as `sekisho serve` runs it."""
    with serving(build_app(core, scheduler=False)) as base:
        yield base


@pytest.fixture
def people(core: Core) -> People:
    return People(core)


def audited_source(core: Core, url: str, people: People) -> str:
    """Ask a question that is denied (so audited), with forged headers; the recorded source."""
    query = {"user": "member01", "verb": "connect", "object": "no-such-console"}
    answer = httpx.post(
        f"{url}/api/v1/decisions", json=query, headers={**people.headers("member01"), **FORGED}
    )
    assert answer.status_code == 200, answer.text
    with core.db.read() as s:
        row = s.scalars(
            select(AuditRow).where(AuditRow.action == "authz.denied").order_by(AuditRow.seq.desc())
        ).first()
    assert row is not None
    return row.source


def sign_in_cookie(url: str) -> str:
    page = httpx.get(f"{url}/signin", headers=FORGED)
    assert page.status_code == 200
    return page.headers["set-cookie"]


def test_forged_headers_from_a_local_client_are_ignored_by_default(
    core: Core, url: str, people: People
) -> None:
    assert audited_source(core, url, people) == "127.0.0.1"
    assert "secure" not in sign_in_cookie(url).lower()  # plain http, as it really is


@pytest.mark.parametrize("trusted", ["127.0.0.2", "10.0.0.0/8, ::1"])
def test_forged_headers_from_a_client_that_is_not_a_configured_proxy_are_ignored(
    core: Core, url: str, people: People
) -> None:
    assert audited_source(core, url, people) == "127.0.0.1"
    assert "secure" not in sign_in_cookie(url).lower()


@pytest.mark.parametrize("trusted", ["127.0.0.1", "127.0.0.0/8"])
def test_a_configured_proxy_sets_the_client_address_and_scheme(
    core: Core, url: str, people: People
) -> None:
    assert audited_source(core, url, people) == "203.0.113.9"
    assert "secure" in sign_in_cookie(url).lower()


@pytest.mark.parametrize("bad", ["*", "not-an-address", "10.0.0.1/8", "127.0.0.1,,"])
def test_a_malformed_proxy_list_is_refused_at_start(bad: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(trusted_proxies=bad)
    assert "trusted_proxies" in str(refused.value)
