"""Forwarding sessions on record: what each step of a session leaves in the audit trail, and
what the bus tells the gateway carrying it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flows import audit_rows, counts, granted

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.access import Verb
from sekisho.domain.access_decisions import AccessDecision
from sekisho.domain.errors import Conflict, Forbidden, NotFound
from sekisho.domain.sessions import STALE_AFTER, Counters, Opening
from sekisho.services.events import Event
from support import ADMIN, AUDITOR, LEADER, MEMBER

TARGET = "prod-admin-console"


def opening(core: Core, user: str = "member01") -> Opening:
    return Opening(
        user=user,
        target=TARGET,
        token_id="t" * 64,
        client_addr="198.51.100.7:50000",
        local_addr="127.0.0.1:9443",
        target_addr="10.0.0.5:443",
        node="node-a",
        expires_at=core.now() + timedelta(hours=1),
    )


def opened(core: Core) -> int:
    """A session of member01 through a live grant, as the gateway opens one."""
    grant = granted(core).grant
    assert grant is not None
    decision = core.authz.decide("member01", Verb.CONNECT, TARGET)
    assert decision.allowed
    return core.sessions.open(opening(core), decision).id


def heard(core: Core) -> list[Event]:
    events: list[Event] = []
    core.bus.subscribe(events.append)
    return events


def test_a_session_opens_and_ends_on_record(core: Core, clock: ManualClock) -> None:
    session_id = opened(core)
    started = audit_rows(core)[-1]
    assert (started.action, started.actor, started.source, started.object) == (
        "session.started",
        "member01",
        "198.51.100.7:50000",
        TARGET,
    )
    assert started.grant_id is not None
    assert started.request_id is not None
    assert set(started.detail) == {"target", "end"}
    clock.advance(timedelta(minutes=5))
    core.sessions.end(Counters(session_id, 10, 2000, 3), "closed by the forwarder")
    ended = audit_rows(core)[-1]
    assert (ended.action, ended.detail) == (
        "session.ended",
        {
            "target": TARGET,
            "reason": "closed by the forwarder",
            "count": 3,
            "output": "10 bytes up, 2000 bytes down",
        },
    )
    before = counts(core)
    core.sessions.end(Counters(session_id, 11, 2001, 4), "again")  # ended already: nothing
    assert counts(core) == before


def test_a_session_that_could_not_start_is_on_record_as_failed(core: Core) -> None:
    view = core.sessions.refuse(opening(core), "the target did not answer")
    assert (view.status, view.end_reason) == ("failed", "the target did not answer")
    entry = audit_rows(core)[-1]
    assert (entry.action, entry.outcome, entry.detail) == (
        "session.failed",
        "failed",
        {"target": TARGET, "error": "the target did not answer"},
    )


def test_a_kill_is_on_record_once_and_the_gateway_is_told_each_time(core: Core) -> None:
    session_id = opened(core)
    events = heard(core)
    view = core.sessions.kill(ADMIN, session_id, "suspicious traffic")
    assert (view.status, view.killed_by, view.kill_reason) == (
        "active",
        "admin01",
        "suspicious traffic",
    )
    again = core.sessions.kill(ADMIN, session_id, "still there?")
    assert again.kill_reason == "suspicious traffic"  # the first kill is the one on record
    kills = [r for r in audit_rows(core) if r.action == "session.killed"]
    assert [(k.actor, k.subject, k.detail) for k in kills] == [
        ("admin01", "member01", {"target": TARGET, "reason": "suspicious traffic"})
    ]
    told = {"session_id": str(session_id), "reason": "killed by admin01: suspicious traffic"}
    assert [(e.name, e.user, e.data) for e in events] == [("session.kill", "member01", told)] * 2


def test_only_admins_kill_other_peoples_sessions(core: Core) -> None:
    session_id = opened(core)
    before = counts(core)
    with pytest.raises(NotFound):
        core.sessions.kill(LEADER, session_id)
    with pytest.raises(Forbidden):
        core.sessions.kill(AUDITOR, session_id)
    assert counts(core) == before
    core.sessions.kill(MEMBER, session_id)  # one's own
    core.sessions.end(Counters(session_id, 0, 0, 0), "killed")
    with pytest.raises(Conflict, match="is ended"):
        core.sessions.kill(ADMIN, session_id)


def test_sessions_of_a_gateway_that_stopped_beating_are_reaped(
    core: Core, clock: ManualClock
) -> None:
    live = opened(core)
    unheld = AccessDecision(True, "leader01", Verb.CONNECT, TARGET, "allowed for the test")
    stale = core.sessions.open(opening(core, "leader01"), unheld).id
    clock.advance(STALE_AFTER)
    core.sessions.heartbeat([Counters(live, 1, 1, 1)])
    clock.advance(timedelta(seconds=1))
    assert core.sessions.reap_stale() == [stale]
    entry = audit_rows(core)[-1]
    assert (entry.action, entry.subject, entry.detail) == (
        "session.ended",
        "leader01",
        {"target": TARGET, "reason": "the gateway carrying it stopped"},
    )
    reaped = core.sessions.get(ADMIN, stale)
    assert (reaped.status, reaped.ended_at) == ("ended", reaped.started_at)
    assert core.sessions.get(ADMIN, live).status == "active"
