"""The gateway while its database does not answer: fail closed, say so once, come back.

PostgreSQL is made unreachable for real: new connections to the test's database are
refused (ALLOW_CONNECTIONS false) and its open ones are terminated.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import structlog
from gateway_support import closed, database_down, talk, wait_for
from test_gateway import grant, start

from sekisho.bootstrap import Core
from sekisho.gateway.client import Forwarder, Refused
from sekisho.gateway.server import Gateway

MakeForwarder = Callable[..., Forwarder]

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


def test_a_session_opened_while_the_database_is_down_is_refused_as_unavailable_once_logged(
    core: Core, forwarder: MakeForwarder, gateway: Gateway, db_url: str
) -> None:
    grant(core)
    f = forwarder()
    with database_down(db_url), structlog.testing.capture_logs() as logs:
        for _ in range(3):
            with pytest.raises(Refused) as refused:
                f.open()
            assert refused.value.code == "unavailable"
            assert "the database is unavailable" in refused.value.reason
    errors = [e for e in logs if e["log_level"] in ("error", "critical")]
    assert [e["event"] for e in errors] == [
        "the database is unavailable; calls answer 503 until it is back"
    ]  # once for the outage: no traceback per connection
    assert not any(e["event"] == "gateway connection failed" for e in logs)


@pytest.mark.realtime
def test_live_sessions_end_when_access_cannot_be_confirmed_and_come_back_after(
    core: Core, forwarder: MakeForwarder, gateway: Gateway, db_url: str
) -> None:
    """Fail closed: a revocation may have committed where the store still answers, so past
    the grace nothing vouches for the session; the forwarder comes back once it can."""
    grant(core, duration="30m")
    gateway.store_grace = 1.0
    notices: list[str] = []
    f, address = start(forwarder, notice=notices.append, retry_pause=(0.1, 0.3))
    first = f.session
    assert first is not None
    sock = talk(address)
    with database_down(db_url):
        wait_for(lambda: not gateway.sessions.all(), seconds=30)  # past the grace
        assert closed(sock)
        wait_for(lambda: any("cannot check access now" in n for n in notices), seconds=10)
        assert not f.wait(0)  # not an end of access: the forward waits to come back
    wait_for(lambda: f.session is not None and f.session.id != first.id, seconds=20)
    assert any("could not be confirmed" in n for n in notices)
    talk(address).close()  # and carries connections again
