"""Several nodes on one PostgreSQL: a revocation on node A cuts a session on node B."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from gateway_support import EchoTarget, wait_for
from sqlalchemy import create_engine, text

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.gateway import pki
from sekisho.gateway.client import Forwarder
from sekisho.gateway.server import Gateway
from sekisho.providers.memory import MemoryProvider
from sekisho.services.events import Event
from sekisho.services.pgbus import ORIGIN, PostgresEventBridge, decode, encode
from sekisho.store.db import Database
from support import ADMIN, LEADER, MEMBER, People, draft

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


@pytest.fixture
def node_b(core: Core, db_url: str, clock: ManualClock, provider: MemoryProvider) -> Iterator[Core]:
    """A second sekisho process on the same database: its own bus, same keys and clock."""
    other = Core(
        db=Database(db_url),
        settings=core.settings,
        provider=provider,
        secrets=core.secrets,
        clock=clock,
        password_hasher=core.password_hasher,
    )
    yield other
    other.db.dispose()


@pytest.fixture
def bridges(core: Core, node_b: Core, db_url: str) -> Iterator[None]:
    a = PostgresEventBridge(db_url, core.bus, node="node-a")
    b = PostgresEventBridge(db_url, node_b.bus, node="node-b")
    a.start()
    b.start()
    yield
    a.stop()
    b.stop()


def test_events_cross_nodes_once_and_do_not_loop(core: Core, node_b: Core, bridges: None) -> None:
    seen_a: list[Event] = []
    seen_b: list[Event] = []
    core.bus.subscribe(seen_a.append)
    node_b.bus.subscribe(seen_b.append)
    core.bus.publish(
        Event("grant.ended", core.now(), grant_id=7, user="member01", data={"reason": "revoked"})
    )
    core.bus.publish(Event("scheduler.stop", core.now()))  # local only: not carried
    wait_for(lambda: len(seen_b) == 1)
    (carried,) = seen_b
    assert (carried.name, carried.grant_id, carried.user) == ("grant.ended", 7, "member01")
    assert carried.data["reason"] == "revoked"
    assert carried.data[ORIGIN] == "node-a"
    wait_for(lambda: len(seen_a) == 2)  # its own two; nothing echoed back
    assert [e.name for e in seen_a] == ["grant.ended", "scheduler.stop"]


def forward_through(
    core: Core, gateway: Gateway, tls_dir: Path
) -> tuple[int, Forwarder, socket.socket]:
    """member01, granted the console now, forwarding through `gateway`; bytes flow."""
    request = core.workflow.file(MEMBER, draft(duration="1h"))
    grant = core.workflow.approve(LEADER, request.id, "ok").grant
    assert grant is not None
    forward = Forwarder(
        gateway.address,
        pki.client_context(pki.ensure_ca(tls_dir).cert),
        People(core).token("member01"),
        "prod-admin-console",
        server_hostname="localhost",
    )
    forward.open()
    local = socket.create_connection(forward.start())
    local.sendall(b"ping")
    assert local.recv(10) == b"ping"
    return grant.id, forward, local


def test_a_revocation_on_node_a_cuts_a_session_on_node_b(
    core: Core,
    node_b: Core,
    bridges: None,
    gateway_model: None,
    echo: EchoTarget,
    tmp_path: Path,
) -> None:
    _ca, leaf = pki.ensure_gateway_certificate(tmp_path, [])
    gateway_b = Gateway(node_b, pki.server_context(leaf), "127.0.0.1", 0)
    gateway_b.start()
    try:
        grant_id, forward, local = forward_through(core, gateway_b, tmp_path)

        core.grants.revoke(ADMIN, grant_id, "incident on node A")  # API on node A

        local.settimeout(5)
        assert local.recv(10) == b""  # cut on node B
        assert forward.wait(5)
        assert "incident on node A" in (forward.end_reason or "")
        forward.close()
    finally:
        gateway_b.stop()


def test_a_lock_on_node_a_cuts_the_users_session_on_node_b_with_its_reason(
    core: Core,
    node_b: Core,
    bridges: None,
    gateway_model: None,
    echo: EchoTarget,
    tmp_path: Path,
) -> None:
    _ca, leaf = pki.ensure_gateway_certificate(tmp_path, [])
    gateway_b = Gateway(node_b, pki.server_context(leaf), "127.0.0.1", 0)
    gateway_b.start()
    try:
        _grant_id, forward, local = forward_through(core, gateway_b, tmp_path)

        core.locks.place(ADMIN, "user", "member01", "laptop stolen")  # on node A

        local.settimeout(5)
        assert local.recv(10) == b""  # cut on node B
        assert forward.wait(5)
        assert forward.end_reason == "locked by admin01: laptop stolen"
        forward.close()
    finally:
        gateway_b.stop()


# -- the bridge's connections die (a database blip, a failover, an admin's kill) -------------

SENDERS = "query LIKE '%pg_notify%'"
LISTENERS = "query LIKE 'LISTEN%'"


def terminate_bridge_backends(db_url: str, which: str) -> list[int]:
    """pg_terminate_backend on the bridges' connections, and wait until they are gone."""
    engine = create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            pids = list(
                c.scalars(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        f"AND pid <> pg_backend_pid() AND ({which})"
                    )
                )
            )
            assert pids, f"no bridge connection matches {which}"
            for pid in pids:
                c.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

            def gone() -> bool:
                alive = c.scalars(
                    text("SELECT pid FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                    {"pids": pids},
                )
                return not list(alive)

            wait_for(gone)
            return pids
    finally:
        engine.dispose()


def warm_up(core: Core, node_b: Core) -> None:
    """One event each way, so both senders have sent and both listeners have heard."""
    heard_a: list[Event] = []
    heard_b: list[Event] = []
    core.bus.subscribe(heard_a.append)
    node_b.bus.subscribe(heard_b.append)
    core.bus.publish(Event("model.loaded", core.now(), data={"sha256": "warm-up-a"}))
    node_b.bus.publish(Event("model.loaded", node_b.now(), data={"sha256": "warm-up-b"}))
    wait_for(lambda: any(ORIGIN in e.data for e in heard_b))
    wait_for(lambda: any(ORIGIN in e.data for e in heard_a))


def test_an_event_is_resent_after_its_sender_connection_died(
    core: Core, node_b: Core, bridges: None, db_url: str
) -> None:
    warm_up(core, node_b)
    seen_b: list[Event] = []
    node_b.bus.subscribe(seen_b.append)
    terminate_bridge_backends(db_url, SENDERS)

    core.bus.publish(
        Event("grant.ended", core.now(), grant_id=41, user="member01", data={"reason": "revoked"})
    )

    wait_for(lambda: any(e.grant_id == 41 for e in seen_b))


@pytest.mark.parametrize(
    "killed", [LISTENERS, f"{SENDERS} OR {LISTENERS}"], ids=["listeners", "senders+listeners"]
)
def test_a_revocation_cuts_across_nodes_after_the_bridge_lost_its_connections(
    core: Core,
    node_b: Core,
    bridges: None,
    gateway_model: None,
    db_url: str,
    tmp_path: Path,
    killed: str,
) -> None:
    """The event itself, or the catch-up after the listener reconnects: never lost. The
    gateway's periodic re-check is off, so only those can cut the session."""
    _ca, leaf = pki.ensure_gateway_certificate(tmp_path, [])
    gateway_b = Gateway(node_b, pki.server_context(leaf), "127.0.0.1", 0)
    gateway_b.recheck_every = None
    gateway_b.start()
    try:
        grant_id, forward, local = forward_through(core, gateway_b, tmp_path)
        warm_up(core, node_b)
        terminate_bridge_backends(db_url, killed)

        core.grants.revoke(ADMIN, grant_id, "incident after a blip")  # at once, on node A

        local.settimeout(5)
        try:
            ended = local.recv(10) == b""
        except TimeoutError:
            ended = False
        assert ended, "node B still relays after the revocation on node A"
        assert forward.wait(5)
        forward.close()
    finally:
        gateway_b.stop()


def test_a_malformed_notification_is_ignored(core: Core, db_url: str) -> None:
    seen: list[Event] = []
    core.bus.subscribe(seen.append)
    bridge = PostgresEventBridge(db_url, core.bus, node="node-a")
    bridge._receive("{not json")
    bridge._receive('{"origin": "node-b"}')
    assert seen == []
    event = Event("grant.ended", datetime.now().astimezone(), grant_id=3)
    bridge._receive(encode(event, "node-a"))  # our own, come back: dropped
    assert seen == []
    bridge._receive(encode(event, "node-b"))
    assert [e.grant_id for e in seen] == [3]
    assert decode(encode(event, "node-b"))[1].data[ORIGIN] == "node-b"
