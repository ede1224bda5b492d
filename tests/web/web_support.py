"""Helpers for the web UI tests: signing people in through the form, reading pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.access import Verb
from sekisho.domain.sessions import Counters, Opening
from sekisho.store.tables import UserRow
from support import LEADER, LEADER2, MEMBER, MEMBER2, People, draft

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


class Codes:
    """TOTP codes as an authenticator app gives them, minding that each is good once.

    A code is accepted once per 30-second step per user, with one step of drift either way:
    the next code is the earliest step not used yet, and the clock moves on when none is left.
    """

    def __init__(self, core: Core, clock: ManualClock, people: People) -> None:
        self.core, self.clock, self.people = core, clock, people

    def password(self, name: str) -> str:
        return self.people.enroll(name)[0]

    def secret(self, name: str) -> str:
        return self.people.enroll(name)[1]

    def next_code(self, name: str) -> str:
        totp = pyotp.TOTP(self.secret(name))
        with self.core.db.read() as s:
            row = s.get(UserRow, name)
            last = row.totp_last_step if row is not None else None
        current = totp.timecode(self.core.now())
        for step in (current - 1, current, current + 1):
            if last is None or step > last:
                return totp.generate_otp(step)
        self.clock.advance(timedelta(seconds=30))
        return self.next_code(name)


def seed_story(core: Core, clock: ManualClock) -> dict[str, int]:
    """A morning's work, through the services: what the screenshots show.

    member01 had 30 minutes earlier (expired), now holds 2 hours with a live gateway session;
    member02 waits for approval; leader02's request was rejected; a session has ended.
    """
    first = core.workflow.file(MEMBER, draft(duration="30m", reason="Check the settlement job"))
    core.workflow.approve(LEADER, first.id, "ok, read only please")
    opened = _open_session(core, "member01")
    clock.advance(timedelta(minutes=12))
    core.sessions.end(Counters(opened, 48_213, 1_904_377, 7), "closed by the forwarder")
    clock.advance(timedelta(minutes=19))
    core.sweeper.run_due()

    clock.advance(timedelta(minutes=5))
    current = core.workflow.file(
        MEMBER,
        draft(
            duration="2h",
            reason="Rotate the payment console API key (quarterly rotation)",
            params={"ticket": "CHG-1234"},
        ),
    )
    approved = core.workflow.approve(
        LEADER, current.id, "OK, go ahead. Ping #prod-changes when done."
    )
    assert approved.grant is not None
    live = _open_session(core, "member01")
    clock.advance(timedelta(minutes=20, seconds=30))
    core.sessions.heartbeat([Counters(live, 182_554, 9_870_112, 23)])

    waiting = core.workflow.file(
        MEMBER2, draft(duration="1h", reason="Investigate the stuck refund batch")
    )
    rejected = core.workflow.file(
        LEADER2,
        draft(group="ProdLeaderWorkGroup", duration="4h", reason="Tune the database"),
    )
    core.workflow.reject(LEADER, rejected.id, "Use the member role; the leader role is not needed")
    return {
        "expired": first.id,
        "current": current.id,
        "grant": approved.grant.id,
        "waiting": waiting.id,
        "session": live,
    }


def _open_session(core: Core, user: str) -> int:
    """A gateway session on record, as the gateway opens one (no sockets needed here)."""
    decision = core.authz.decide(user, Verb.CONNECT, "prod-admin-console")
    assert decision.allowed, decision.reason
    view = core.sessions.open(
        Opening(
            user=user,
            target="prod-admin-console",
            token_id="0" * 64,
            client_addr="198.51.100.7",
            local_addr="127.0.0.1:18443",
            target_addr="127.0.0.1:8643",
            node="node-1",
            expires_at=decision.grant_end or core.now(),
        ),
        decision,
    )
    return view.id
