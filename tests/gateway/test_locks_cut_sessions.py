"""A lock cuts the live sessions it covers at once, on every gateway, saying why; and it
refuses new ones with the same words."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from gateway_support import closed, talk, wait_for
from test_gateway import grant, session_rows, start

from sekisho.bootstrap import Core
from sekisho.domain.actor import Actor
from sekisho.gateway.client import Forwarder, Refused
from support import ADMIN, LEADER2, People

MakeForwarder = Callable[..., Forwarder]
SECURITY = Actor("security01", "198.51.100.20")
STOLEN = "locked by security01: laptop stolen"


def test_a_user_lock_cuts_their_forward_with_the_reason(
    core: Core, forwarder: MakeForwarder
) -> None:
    grant(core, duration="2h")
    f, address = start(forwarder)
    live = [talk(address) for _ in range(3)]
    core.locks.place(SECURITY, "user", "member01", "laptop stolen")
    for sock in live:
        assert closed(sock)
    assert f.wait(5)
    assert f.ended_by_gateway
    assert f.end_reason == STOLEN
    wait_for(lambda: session_rows(core)[0].status == "ended")
    assert session_rows(core)[0].end_reason == STOLEN


def test_a_target_lock_cuts_everyone_on_it_and_refuses_new_forwards(
    core: Core, forwarder: MakeForwarder, people: People
) -> None:
    grant(core, duration="2h")
    grant(core, duration="2h", actor=Actor("leader01", "x"), approver=LEADER2)
    mine, _ = start(forwarder)
    theirs, _ = start(forwarder, user="leader01")
    core.locks.place(ADMIN, "target", "prod-admin-console", "console compromised")
    for f in (mine, theirs):
        assert f.wait(5)
        assert f.end_reason == "locked by admin01: console compromised"
    with pytest.raises(Refused, match="locked by admin01: console compromised"):
        start(forwarder, user="leader01")
