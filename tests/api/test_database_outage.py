"""While the database cannot be reached, every call answers a 503 problem that says so (with
Retry-After), the log says it once per outage and once when it is back, and /readyz tells a
load balancer (503) while /healthz stays a liveness check. Against the real PostgreSQL,
through a TCP proxy that the test cuts and restores."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import structlog
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.domain.actor import Actor
from sekisho.providers.memory import MemoryProvider
from sekisho.server import build_app
from sekisho.services.events import Event
from sekisho.services.secretbox import SecretBox
from sekisho.store.db import Database
from support import CHEAP_HASHER, EXAMPLE_TEXT, People, serving
from tcp_proxy import TcpProxy

# The real PostgreSQL only: an outage is a database server going away.
pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]

PROBLEM = "application/problem+json"


@pytest.fixture
def proxy(db_url: str) -> Iterator[TcpProxy]:
    url = make_url(db_url)
    relay = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    yield relay
    relay.stop()


@pytest.fixture
def core(db_url: str, proxy: TcpProxy, settings: Settings, clock: ManualClock) -> Iterator[Core]:
    """The Core reaches PostgreSQL only through the proxy."""
    url = make_url(db_url).set(host="127.0.0.1", port=proxy.port)
    db = Database(url.render_as_string(hide_password=False))
    built = Core(
        db=db,
        settings=settings,
        provider=MemoryProvider(),
        secrets=SecretBox(Fernet.generate_key()),
        clock=clock,
        sleep=lambda _s: None,
        password_hasher=CHEAP_HASHER,
    )
    built.models.load(EXAMPLE_TEXT, "example.yaml", Actor.system("test"))
    yield built
    db.dispose()


@pytest.fixture
def url(core: Core) -> Iterator[str]:
    with serving(build_app(core, scheduler=False)) as base:
        yield base


def outage_lines(logs: list[dict[str, Any]]) -> list[str]:
    return [str(e["event"]) for e in logs if "database" in str(e["event"])]


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert int(response.headers["retry-after"]) > 0
    problem = response.json()
    assert problem["code"] == "database-unavailable"
    assert "database" in problem["detail"]


def test_an_outage_is_a_503_logged_once_and_readiness_follows_it(
    core: Core, url: str, proxy: TcpProxy
) -> None:
    people = People(core)
    member, auditor = people.headers("member01"), people.headers("auditor01")
    assert httpx.get(f"{url}/api/v1/requests", headers=member).status_code == 200
    assert httpx.get(f"{url}/api/v1/readyz").status_code == 200

    with structlog.testing.capture_logs() as logs:
        proxy.stop()  # the database host goes away
        calls = [
            lambda: httpx.get(f"{url}/api/v1/requests", headers=member),
            lambda: httpx.get(f"{url}/api/v1/me", headers=member),
            lambda: httpx.post(
                f"{url}/api/v1/decisions",
                json={"user": "member01", "verb": "connect", "object": "x"},
                headers=auditor,
            ),
            lambda: httpx.get(f"{url}/api/v1/audit", headers=auditor),
        ]
        for _ in range(3):
            for call in calls:
                assert_unavailable(call())
        assert_unavailable(httpx.get(f"{url}/api/v1/readyz"))
        assert httpx.get(f"{url}/api/v1/healthz").status_code == 200  # alive, not ready
        page = httpx.get(
            f"{url}/requests/mine", cookies={"sekisho_session": people.token("member01")}
        )
        assert page.status_code == 503
        assert "database" in page.text
        during = list(logs)

        proxy.start()  # it is back
        assert httpx.get(f"{url}/api/v1/readyz").status_code == 200
        assert httpx.get(f"{url}/api/v1/requests", headers=member).status_code == 200
        after = list(logs)[len(during) :]

    assert outage_lines(during) == [
        "the database is unavailable; calls answer 503 until it is back"
    ]
    assert not [e for e in during if e.get("exc_info") or e["log_level"] == "critical"]
    assert outage_lines(after) == ["the database is back"]

    with structlog.testing.capture_logs() as second:
        proxy.stop()  # a second outage is logged again, once
        for call in calls:
            assert_unavailable(call())
        proxy.start()
        assert httpx.get(f"{url}/api/v1/readyz").status_code == 200
    assert outage_lines(second) == [
        "the database is unavailable; calls answer 503 until it is back",
        "the database is back",
    ]


def test_the_background_loops_say_an_outage_once_too(
    core: Core, proxy: TcpProxy, clock: ManualClock
) -> None:
    """The scheduler and the dispatcher retry every second while the database is away: the
    outage is one line in the log, not a traceback per retry."""
    with serving(build_app(core)), structlog.testing.capture_logs() as logs:
        proxy.stop()
        for _ in range(6):  # six retry pauses of each loop
            clock.advance(timedelta(seconds=1))
            core.bus.publish(Event("notify.queued", core.now()))
            # Proving an absence (no second line) takes letting the loops run a while.
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while not outage_lines(logs) and time.monotonic() < deadline:
            time.sleep(0.05)
        during = list(logs)
        proxy.start()
    assert outage_lines(during) == [
        "the database is unavailable; calls answer 503 until it is back"
    ]
    assert not [e for e in during if e.get("exc_info")]
