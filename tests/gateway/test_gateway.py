"""The gateway with real sockets on 127.0.0.1: authorised per connection, cut when access ends."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy
from gateway_support import EchoTarget, closed, database_down, talk, wait_for
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.extensions import ExtensionDraft
from sekisho.domain.grants import EndReason
from sekisho.gateway import pki, protocol
from sekisho.gateway.client import SPARES, Forwarder, Refused
from sekisho.gateway.server import Gateway, GatewayLimits
from sekisho.store.tables import AuditRow, SessionRow
from support import ADMIN, LEADER, LEADER2, MEMBER, People, draft

MakeForwarder = Callable[..., Forwarder]


def grant(core: Core, duration: str = "1h", actor=MEMBER, approver=LEADER) -> int:  # type: ignore[no-untyped-def]
    request = core.workflow.file(actor, draft(duration=duration))
    done = core.workflow.approve(approver, request.id, "ok")
    assert done.grant is not None
    return done.grant.id


def start(make: MakeForwarder, **kw: object) -> tuple[Forwarder, tuple[str, int]]:
    f = make(**kw)
    f.open()
    return f, f.start()


def session_rows(core: Core) -> list[SessionRow]:
    with core.db.read() as s:
        return list(s.scalars(select(SessionRow).order_by(SessionRow.id)))


def audit_actions(core: Core) -> list[str]:
    with core.db.read() as s:
        return list(s.scalars(select(AuditRow.action).order_by(AuditRow.seq)))


# -- authorised when it opens -----------------------------------------------------------------


def test_with_a_grant_bytes_flow_and_the_session_is_on_record(
    core: Core, forwarder: MakeForwarder, echo: EchoTarget
) -> None:
    grant_id = grant(core)
    f, address = start(forwarder)
    assert f.session is not None
    assert f.session.via == f"active grant #{grant_id} in ProdMemberWorkGroup"
    assert f.session.target["dns_name"] == "admin.prod.internal"

    connections = [talk(address, b"x" * 100_000) for _ in range(5)]  # a browser opens many
    for c in connections:
        c.close()
    f.close()
    wait_for(lambda: session_rows(core)[0].status == "ended")
    row = session_rows(core)[0]
    assert (row.user, row.target, row.grant_id) == ("member01", "prod-admin-console", grant_id)
    assert row.connections == 5
    assert row.bytes_up == row.bytes_down == 500_000
    assert row.local_addr.startswith("127.0.0.1:")
    assert row.target_addr == f"127.0.0.1:{echo.port}"
    assert "session.started" in audit_actions(core)
    assert "session.ended" in audit_actions(core)


def test_without_a_grant_the_forward_is_refused_with_the_way_in(
    core: Core, forwarder: MakeForwarder
) -> None:
    f = forwarder()
    with pytest.raises(Refused) as refused:
        f.open()
    assert refused.value.code == "denied"
    assert "no active grant" in refused.value.reason
    assert refused.value.routes == [{"template": "AddUserToGroup", "group": "ProdMemberWorkGroup"}]
    assert session_rows(core) == []
    assert "authz.denied" in audit_actions(core)


def test_only_targets_in_the_model_can_be_reached(
    core: Core, forwarder: MakeForwarder, echo: EchoTarget
) -> None:
    grant(core)
    for name in ("localhost", "prod-admin-console.evil"):
        with pytest.raises(Refused) as refused:
            forwarder(target=name).open()
        assert "unknown target" in refused.value.reason
    with pytest.raises(Refused) as refused:  # an address is not even a name
        forwarder(target=f"127.0.0.1:{echo.port}").open()
    assert refused.value.code == "bad-request"


def test_forged_and_expired_tokens_are_refused(
    core: Core,
    forwarder: MakeForwarder,
    people: People,
    clock: ManualClock,
    gateway: Gateway,
    tls_dir: Path,
) -> None:
    grant(core)
    forged = Forwarder(
        gateway.address,
        pki.client_context(pki.ensure_ca(tls_dir).cert),
        "sks_" + "A" * 43,
        "prod-admin-console",
        server_hostname="localhost",
    )
    with pytest.raises(Refused) as refused:
        forged.open()
    assert refused.value.code == "unauthenticated"

    people.token("member01")
    clock.advance(timedelta(hours=1, seconds=1))
    with pytest.raises(Refused) as refused:
        forwarder().open()
    assert refused.value.code == "unauthenticated"
    assert "expired" in refused.value.reason


def test_another_users_token_cannot_ride_a_session(
    core: Core, forwarder: MakeForwarder, people: People, gateway: Gateway, tls_dir: Path
) -> None:
    grant(core)
    f, _ = start(forwarder)
    assert f.session is not None
    context = pki.client_context(pki.ensure_ca(tls_dir).cert)
    raw = socket.create_connection(gateway.address)
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        hello = {"v": 1, "op": "connect", "token": people.token("member02")}
        protocol.send_line(tls, {**hello, "session": f.session.id})
        reply = protocol.read_line(tls)
    assert reply == {"ok": False, "code": "no-session", "reason": "no such live session"}


def test_a_target_that_is_down_fails_the_session_on_record(
    core: Core, forwarder: MakeForwarder
) -> None:
    grant(core)  # ProdMemberWorkGroup may also connect to the bastion, which is down here
    with pytest.raises(Refused) as refused:
        forwarder(target="prod-bastion").open()
    assert refused.value.code == "target-unreachable"
    (row,) = session_rows(core)
    assert row.status == "failed"
    assert "is not answering" in (row.end_reason or "")
    assert "session.failed" in audit_actions(core)


def test_garbage_hellos_get_a_clear_refusal(gateway: Gateway, tls_dir: Path) -> None:
    context = pki.client_context(pki.ensure_ca(tls_dir).cert)
    for line in (b"not json\n", b'{"v": 1, "op": "dance"}\n', b'{"v": 2, "op": "open"}\n'):
        with context.wrap_socket(
            socket.create_connection(gateway.address), server_hostname="localhost"
        ) as tls:
            tls.sendall(line)
            data = tls.recv(4096)
            if data:  # a malformed line may just be dropped; a parsed one gets a reason
                assert json.loads(data)["ok"] is False
    # A client without TLS gets no answer at all, only the end of the connection.
    with socket.create_connection(gateway.address) as plain:
        plain.sendall(b'{"v": 1, "op": "open"}\n')
        plain.settimeout(5)
        try:
            answer = plain.recv(100)
        except OSError:
            answer = b""
        assert not answer.startswith(b"{")


# -- cut the moment access ends ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["expired", "released", "revoked", "removed"])
def test_every_way_a_grant_ends_cuts_live_connections_at_once(
    core: Core, forwarder: MakeForwarder, clock: ManualClock, how: str
) -> None:
    grant_id = grant(core, duration="30m")
    f, address = start(forwarder)
    live = [talk(address) for _ in range(3)]

    if how == "expired":
        clock.advance(timedelta(minutes=30))
        core.sweeper.run_due()
    elif how == "released":
        core.grants.release(MEMBER, grant_id)
    elif how == "revoked":
        core.grants.revoke(ADMIN, grant_id, "incident 42")
    else:
        request = core.workflow.file(
            MEMBER, draft(template="RemoveUserFromGroup", duration=None, info={})
        )
        core.workflow.approve(LEADER, request.id, "done early")

    for sock in live:
        assert closed(sock)
    assert f.wait(5)
    assert f.ended_by_gateway
    assert f"grant #{grant_id} ended" in (f.end_reason or "")
    reason = {"expired": EndReason.EXPIRED, "released": "released", "revoked": "incident 42"}
    if how in reason:
        assert str(reason[how]) in (f.end_reason or "")
    with pytest.raises(ConnectionRefusedError):
        talk(address)  # the local listener is gone too
    wait_for(lambda: session_rows(core)[0].status == "ended")
    assert f"grant #{grant_id} ended" in (session_rows(core)[0].end_reason or "")


def test_the_session_timer_cuts_even_if_no_event_arrives(
    core: Core, forwarder: MakeForwarder, clock: ManualClock, gateway: Gateway
) -> None:
    grant(core, duration="30m")
    f, address = start(forwarder)
    sock = talk(address)
    clock.advance(timedelta(minutes=30))  # no sweep ran: only the gateway's own deadline
    gateway.check_deadlines()
    assert closed(sock)
    assert f.wait(5)
    assert "ended" in (f.end_reason or "")


def test_an_overlapping_grant_keeps_the_session_alive(
    core: Core, forwarder: MakeForwarder, clock: ManualClock
) -> None:
    grant(core, duration="30m")
    f, address = start(forwarder)  # carried by the first grant, which ends at 09:30
    sock = talk(address)
    clock.advance(timedelta(minutes=10))
    grant(core, duration="30m", approver=LEADER2)  # a second one, until 09:40
    clock.advance(timedelta(minutes=20))
    core.sweeper.run_due()  # the first grant expires: the second still allows access
    sock.sendall(b"still here")
    assert sock.recv(100) == b"still here"
    assert not f.wait(0.3)
    clock.advance(timedelta(minutes=10))  # the second one's end: now it is over
    assert closed(sock)
    assert f.wait(5)
    assert "grant #2 ended" in (f.end_reason or "")


def test_an_extension_keeps_the_live_session_until_the_new_end(
    core: Core, forwarder: MakeForwarder, clock: ManualClock, gateway: Gateway
) -> None:
    grant_id = grant(core, duration="30m")  # until 09:30
    f, address = start(forwarder)
    sock = talk(address)
    [live] = gateway.sessions.all()
    assert live.expires_at == core.now() + timedelta(minutes=30)
    clock.advance(timedelta(minutes=20))
    asked = core.workflow.extend(MEMBER, grant_id, ExtensionDraft("overran", duration="20m"))
    core.workflow.approve(LEADER, asked.id, "ok")
    # The bus told the gateway: the session now lasts until the grant's new end.
    wait_for(lambda: live.expires_at == core.now() + timedelta(minutes=30))
    clock.advance(timedelta(minutes=10))  # the old end: no sweep ends anything, no cut
    core.sweeper.run_due()
    gateway.check_deadlines()
    sock.sendall(b"still here")
    assert sock.recv(100) == b"still here"
    assert not f.wait(0.3)
    clock.advance(timedelta(minutes=20))  # the new end: now it is over
    gateway.check_deadlines()
    assert closed(sock)
    assert f.wait(5)
    assert f"grant #{grant_id} ended" in (f.end_reason or "")


OVERLAP_ROUNDS = 25


def revoke_together(core: Core, grant_id: int, together: threading.Barrier) -> None:
    together.wait()
    core.grants.revoke(ADMIN, grant_id, "both at once")


def test_overlapping_grants_ended_at_the_same_moment_always_end_the_session(
    core: Core, echo: EchoTarget, gateway_model: None, tls_dir: Path, people: People
) -> None:
    """Two grants carry one session; both are revoked at once, from two threads, many times.

    Whichever end is decided first may re-bind the session to the other grant; the other's
    end must still find it. No periodic re-check here: only the two ends can cut it.
    """
    _ca, leaf = pki.ensure_gateway_certificate(tls_dir, [])
    limits = GatewayLimits(opens_per_user=1000, opens_burst=1000)
    gw = Gateway(core, pki.server_context(leaf), "127.0.0.1", 0, limits)
    gw.recheck_every = None
    gw.start()
    context = pki.client_context(pki.ensure_ca(tls_dir).cert)
    try:
        for round_ in range(OVERLAP_ROUNDS):
            first, second = grant(core), grant(core, approver=LEADER2)
            f = Forwarder(
                gw.address,
                context,
                people.token("member01"),
                "prod-admin-console",
                server_hostname="localhost",
                spares=0,
            )
            f.open()
            sock = talk(f.start())
            together = threading.Barrier(2)
            threads = [
                threading.Thread(target=revoke_together, args=(core, g, together))
                for g in (first, second)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert closed(sock), f"round {round_}: the session outlived both grants"
            assert f.wait(5)
            f.close()
            sock.close()
    finally:
        gw.stop()


def test_a_forward_ends_with_the_login_that_opened_it(
    core: Core, forwarder: MakeForwarder, clock: ManualClock
) -> None:
    grant(core, duration="4h")
    f, address = start(forwarder)
    sock = talk(address)
    clock.advance(timedelta(hours=1))  # tokens last an hour here
    assert closed(sock)
    assert f.wait(5)
    assert f.end_reason == "your login expired; log in again"


def test_logging_out_ends_the_sessions_it_opened(
    core: Core, forwarder: MakeForwarder, people: People
) -> None:
    grant(core)
    f, address = start(forwarder)
    sock = talk(address)
    core.identity.logout(core.identity.authenticate(people.token("member01")), "test")
    assert closed(sock)
    assert f.wait(5)
    assert "logged out" in (f.end_reason or "")


def test_an_admin_kills_a_session(core: Core, forwarder: MakeForwarder) -> None:
    grant(core)
    f, address = start(forwarder)
    sock = talk(address)
    assert f.session is not None
    core.sessions.kill(ADMIN, f.session.id)
    assert closed(sock)
    assert f.wait(5)
    assert f.end_reason == "killed by admin01"


def test_an_idle_session_ends(core: Core, forwarder: MakeForwarder, gateway: Gateway) -> None:
    grant(core)
    f, address = start(forwarder)
    talk(address).close()
    assert f.session is not None
    live = gateway.sessions.get(f.session.id)
    assert live is not None
    live.opened -= 10_000  # as if nothing had moved for hours
    for _cut, meter in list(live._relays.values()):
        meter.last_activity -= 10_000
    gateway.check_deadlines()
    assert f.wait(5)
    assert "idle" in (f.end_reason or "")


def test_a_forwarder_that_vanishes_ends_its_session(
    core: Core, gateway: Gateway, people: People, tls_dir: Path
) -> None:
    grant(core)
    context = pki.client_context(pki.ensure_ca(tls_dir).cert)
    tls = context.wrap_socket(
        socket.create_connection(gateway.address), server_hostname="localhost"
    )
    hello = {"v": 1, "op": "open", "token": people.token("member01")}
    protocol.send_line(tls, {**hello, "target": "prod-admin-console"})
    assert protocol.read_line(tls)["ok"] is True
    socket.socket.shutdown(tls, socket.SHUT_RDWR)  # the process died: no goodbye
    tls.close()
    wait_for(lambda: session_rows(core)[0].status == "ended")
    assert session_rows(core)[0].end_reason == "the forwarder disconnected"
    assert gateway.sessions.all() == []


def test_a_forwarder_s_local_address_must_be_an_address(
    core: Core, gateway: Gateway, people: People, tls_dir: Path
) -> None:
    """It is stored on the session and shown to operators: no escapes, no markup."""
    grant(core)
    context = pki.client_context(pki.ensure_ca(tls_dir).cert)
    hello = {
        "v": 1,
        "op": "open",
        "token": people.token("member01"),
        "target": "prod-admin-console",
    }
    for local in ("127.0.0.1:8443\x1b]0;owned\x07", "[red]x[/red]", "a b:1"):
        with context.wrap_socket(
            socket.create_connection(gateway.address), server_hostname="localhost"
        ) as tls:
            protocol.send_line(tls, {**hello, "local": local})
            answer = protocol.read_line(tls)
        assert answer["ok"] is False
        assert answer["code"] == "bad-request"
    assert session_rows(core) == []  # nothing recorded
    with context.wrap_socket(
        socket.create_connection(gateway.address), server_hostname="localhost"
    ) as tls:
        protocol.send_line(tls, {**hello, "local": "[::1]:8443"})
        assert protocol.read_line(tls)["ok"] is True


# -- faults -----------------------------------------------------------------------------------


def test_a_slow_reader_does_not_balloon_memory(
    core: Core, forwarder: MakeForwarder, gateway: Gateway
) -> None:
    """Back-pressure: a client that stops reading stops the target's sending too."""
    grant(core)
    f, address = start(forwarder)
    sock = socket.create_connection(address)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sent = 0
    blob = b"y" * (1 << 20)
    sock.settimeout(0.5)
    try:  # the echo target sends back what we send: we never read it
        while sent < 256 << 20:
            sent += sock.send(blob)
    except (TimeoutError, BlockingIOError):
        pass
    assert f.session is not None
    live = gateway.sessions.get(f.session.id)
    assert live is not None
    counters = live.counters()
    # Everything in flight sits in bounded places: kernel buffers and one buffer per
    # direction per relay. Far less than what we tried to push.
    assert sent < 64 << 20, f"{sent} bytes were accepted without anyone reading"
    assert counters.bytes_up < 64 << 20


def test_a_flood_of_connections_from_one_address_is_rate_limited(
    core: Core, echo: EchoTarget, gateway_model: None, tls_dir: Path, people: People
) -> None:
    _ca, leaf = pki.ensure_gateway_certificate(tls_dir, [])
    limits = GatewayLimits(new_connections_per_ip=5, new_connections_burst=10)
    gw = Gateway(core, pki.server_context(leaf), "127.0.0.1", 0, limits)
    gw.start()
    try:
        socks = [socket.create_connection(gw.address) for _ in range(50)]
        wait_for(lambda: gw.refused_floods >= 30)
        for s in socks:
            s.close()
    finally:
        gw.stop()


def test_the_gateway_going_away_is_survived_only_while_access_holds(
    core: Core, echo: EchoTarget, gateway_model: None, tls_dir: Path, people: People
) -> None:
    _ca, leaf = pki.ensure_gateway_certificate(tls_dir, [])
    context = pki.server_context(leaf)
    first = Gateway(core, context, "127.0.0.1", 0)
    first.start()
    port = first.address[1]
    grant_id = grant(core)
    notices: list[str] = []
    f = Forwarder(
        ("127.0.0.1", port),
        pki.client_context(pki.ensure_ca(tls_dir).cert),
        people.token("member01"),
        "prod-admin-console",
        server_hostname="localhost",
        reconnect_for=20,
        clock=core.now,  # the gateway's clock, which the session's end is in
        notice=notices.append,
    )
    f.open()
    address = f.start()
    first_session = f.session
    first.stop()  # a restart: clients see a clear error ...
    wait_for(lambda: any("reconnecting" in n for n in notices))
    second = Gateway(core, context, "127.0.0.1", port)
    second.start()
    try:  # ... and reconnect, because access still holds
        wait_for(lambda: any("reconnected" in n for n in notices))
        assert f.session is not None
        assert first_session is not None
        assert f.session.id != first_session.id
        talk(address).close()
        core.grants.release(MEMBER, grant_id)  # and once access ends, so does the forward
        assert f.wait(5)
        assert "ended" in (f.end_reason or "")
    finally:
        f.close()
        second.stop()


def test_the_gateway_verifies_as_the_client_expects(gateway: Gateway, tmp_path: Path) -> None:
    """A forwarder trusting another CA refuses to talk to this gateway."""
    other = pki.client_context(pki.ensure_ca(tmp_path / "other").cert)
    with pytest.raises(ssl.SSLCertVerificationError):
        other.wrap_socket(socket.create_connection(gateway.address), server_hostname="localhost")


def test_many_connections_at_once(core: Core, forwarder: MakeForwarder) -> None:
    grant(core)
    _f, address = start(forwarder)
    results: list[bool] = []

    def one() -> None:
        with talk(address, b"z" * 10_000):
            results.append(True)

    threads = [threading.Thread(target=one) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 40


def test_standby_connections_carry_new_connections_and_end_with_the_session(
    core: Core, forwarder: MakeForwarder, gateway: Gateway
) -> None:
    grant_id = grant(core)
    f, address = start(forwarder)
    assert f.session is not None
    wait_for(lambda: len(f._spares) == SPARES)  # ready ahead of need
    live = gateway.sessions.get(f.session.id)
    assert live is not None
    wait_for(lambda: len(live._standby) == SPARES)
    talk(address).close()  # carried by a standby connection ...
    wait_for(lambda: len(f._spares) == SPARES)  # ... which is replaced
    core.grants.release(MEMBER, grant_id)
    assert f.wait(5)
    assert f._spares == []
    wait_for(lambda: live._standby == {})


def test_the_gateway_keeps_accepting_after_a_passing_accept_failure(
    core: Core, forwarder: MakeForwarder, gateway: Gateway
) -> None:
    real = gateway._listener
    assert real is not None

    class Flaky:
        """The listener, failing once as when the process runs out of descriptors."""

        failed = False

        def accept(self) -> tuple[socket.socket, tuple[str, int]]:
            if not Flaky.failed:
                Flaky.failed = True
                raise OSError(24, "Too many open files")
            assert real is not None
            return real.accept()

        def fileno(self) -> int:
            assert real is not None
            return real.fileno()

        def getsockname(self) -> tuple[str, int]:
            assert real is not None
            return real.getsockname()  # type: ignore[no-any-return]

    gateway._listener = Flaky()  # type: ignore[assignment]
    try:
        grant(core)
        _f, address = start(forwarder)  # the accept loop picks up the flaky one on its next turn
        talk(address).close()
    finally:
        gateway._listener = real


def test_the_re_check_of_all_live_sessions_is_one_read_however_many(
    core: Core, forwarder: MakeForwarder, gateway: Gateway
) -> None:
    """The store is asked once for every live session, not once per session."""
    gateway.recheck_every = None  # this test runs the re-check itself
    grant(core)
    me = threading.get_ident()
    statements: list[str] = []
    transactions: list[int] = []

    def on_statement(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if threading.get_ident() == me:
            statements.append(statement)

    def on_begin(_conn) -> None:  # type: ignore[no-untyped-def]
        if threading.get_ident() == me:
            transactions.append(1)

    def one_recheck() -> tuple[int, int]:
        statements.clear()
        transactions.clear()
        gateway._recheck(gateway.sessions.all())
        return len(transactions), len(statements)

    sqlalchemy.event.listen(sqlalchemy.Engine, "before_cursor_execute", on_statement)
    sqlalchemy.event.listen(sqlalchemy.Engine, "begin", on_begin)
    try:
        start(forwarder, spares=0)
        alone = one_recheck()
        for _ in range(7):
            start(forwarder, spares=0)
        assert len(gateway.sessions.all()) == 8
        many = one_recheck()
    finally:
        sqlalchemy.event.remove(sqlalchemy.Engine, "before_cursor_execute", on_statement)
        sqlalchemy.event.remove(sqlalchemy.Engine, "begin", on_begin)
    assert alone[0] == many[0] == 1  # one read transaction
    assert many[1] == alone[1]  # and as many statements for eight sessions as for one


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_session_at_its_end_ends_even_while_the_store_is_unreachable(
    core: Core, forwarder: MakeForwarder, gateway: Gateway, clock: ManualClock, db_url: str
) -> None:
    """No store to ask whether another grant carries it on: it ends at its known end."""
    grant(core, duration="30m")
    f, address = start(forwarder)
    sock = talk(address)
    with database_down(db_url):
        clock.advance(timedelta(minutes=30))
        with contextlib.suppress(sqlalchemy.exc.OperationalError):
            gateway.check_deadlines()  # (the gateway's own watch may run it first)
        assert closed(sock)
        assert f.wait(5)
        assert "grant #1 ended (expired)" in (f.end_reason or "")
