"""A gateway that goes away is retried for as long as access holds, not for a fixed while:
the forwarder gives up only when the session's own end has passed (or the API says access
ended), and says so; a gateway that comes back in time is rejoined."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from gateway_support import talk, wait_for

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.gateway import pki
from sekisho.gateway.client import Forwarder
from sekisho.gateway.server import Gateway
from support import LEADER, MEMBER, People, draft


def grant(core: Core, duration: str) -> int:
    request = core.workflow.file(MEMBER, draft(duration=duration))
    done = core.workflow.approve(LEADER, request.id, "ok")
    assert done.grant is not None
    return done.grant.id


Away = tuple[Forwarder, int, ssl.SSLContext, list[str]]


@pytest.fixture
def away(
    core: Core, gateway_model: None, tls_dir: Path, people: People, clock: ManualClock
) -> Iterator[Away]:
    """A forward (on a 2 h grant) whose gateway has just gone away; the forwarder reads the
    gateway's clock. Its session ends with the login, an hour after it was opened."""
    grant(core, "2h")
    _ca, leaf = pki.ensure_gateway_certificate(tls_dir, [])
    context = pki.server_context(leaf)
    first = Gateway(core, context, "127.0.0.1", 0)
    first.start()
    port = first.address[1]
    notices: list[str] = []
    f = Forwarder(
        first.address,
        pki.client_context(pki.ensure_ca(tls_dir).cert),
        people.token("member01"),
        "prod-admin-console",
        server_hostname="localhost",
        clock=clock.now,
        retry_pause=(0.02, 0.1),  # quick retries: the test counts them, not seconds
        notice=notices.append,
    )
    f.open()
    f.start()
    first.stop()
    wait_for(lambda: any("the gateway is unreachable since" in n for n in notices))
    yield f, port, context, notices
    f.close()


def test_the_session_s_end_passing_while_the_gateway_is_away_ends_the_forward_truly(
    clock: ManualClock, away: Away
) -> None:
    f, _port, _context, _notices = away
    attempts = f.reconnect_attempts
    wait_for(lambda: f.reconnect_attempts >= attempts + 5)
    assert not f.wait(0)  # still trying: the session has not reached its end
    clock.advance(timedelta(minutes=61))  # past the login's end, which bounds this session
    assert f.wait(10)
    assert f.access_ended
    assert f.end_reason is not None
    assert f.end_reason.startswith("your login expired; log in again at ")
    assert "while the gateway was unreachable" in f.end_reason


def test_the_forwarder_keeps_retrying_while_access_holds_and_rejoins_the_gateway(
    core: Core, clock: ManualClock, away: Away
) -> None:
    f, port, context, notices = away
    first_session = f.session
    assert first_session is not None
    wait_for(lambda: f.reconnect_attempts >= 10)
    clock.advance(timedelta(minutes=45))  # a long outage, but the session still holds
    attempts = f.reconnect_attempts
    wait_for(lambda: f.reconnect_attempts >= attempts + 10)
    assert not f.wait(0)
    again = Gateway(core, context, "127.0.0.1", port)
    again.start()
    try:
        wait_for(lambda: any("reconnected" in n for n in notices))
        assert f.session is not None
        assert f.session.id != first_session.id
        assert f.unreachable_since is None
        host, port = f.listen()
        talk((host, port)).close()  # bytes flow through the new session
        assert not f.wait(0)
    finally:
        f.close()
        again.stop()
