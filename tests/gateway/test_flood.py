"""One address flooding the gateway with silent connections does not lock everyone else out.

The flood comes from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to loopback, so a client
socket may bind there), the user from 127.0.0.1, against a gateway with its default limits.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterator

import pytest
from gateway_support import wait_for

from sekisho.bootstrap import Core
from sekisho.gateway.client import Forwarder
from sekisho.gateway.limits import PendingSlots, client_key
from sekisho.gateway.server import Gateway
from sekisho.gateway.setup import build_gateway
from support import LEADER, MEMBER, draft

FLOODER = "127.0.0.2"
MakeForwarder = Callable[..., Forwarder]


@pytest.fixture
def flood() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for sock in made:
        sock.close()


def silent_connection(gateway: Gateway, source: str) -> socket.socket:
    """A TCP connection that never starts TLS: it holds a slot until the hello timeout."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(gateway.address)
    return sock


def echo_through(forward: Forwarder, payload: bytes = b"still open for business") -> bytes:
    local = socket.create_connection(forward.start(), timeout=5)
    try:
        local.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = local.recv(4096)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        local.close()


def test_silent_connections_from_one_address_leave_room_for_everyone_else(
    core: Core, gateway: Gateway, forwarder: MakeForwarder, flood: list[socket.socket]
) -> None:
    request = core.workflow.file(MEMBER, draft(duration="1h"))
    assert core.workflow.approve(LEADER, request.id, "ok").grant is not None
    total = gateway.limits.handshakes
    # More silent connections than there are slots in all, well within the address's rate.
    for _ in range(total + 44):
        flood.append(silent_connection(gateway, FLOODER))
    # Accepted in order: once this many are refused, every one of them has been seen.
    wait_for(lambda: gateway.refused_floods >= 44)
    assert gateway._pending.in_use(FLOODER) <= gateway.limits.handshakes_per_ip

    forward = forwarder()  # from 127.0.0.1, while the flood still holds its slots
    forward.open()
    assert echo_through(forward) == b"still open for business"


def test_a_flooder_s_slots_come_back_when_its_connections_go(
    gateway: Gateway, flood: list[socket.socket]
) -> None:
    for _ in range(gateway.limits.handshakes_per_ip * 2):
        flood.append(silent_connection(gateway, FLOODER))
    wait_for(lambda: gateway.refused_floods >= gateway.limits.handshakes_per_ip)
    for sock in flood:
        sock.close()
    flood.clear()
    wait_for(lambda: gateway._pending.in_use() == 0)


def test_the_caps_are_settings(core: Core, gateway_model: None, flood: list[socket.socket]) -> None:
    settings = core.settings.model_copy(
        update={"gateway_port": 0, "gateway_unauthenticated_per_ip": 3}
    )
    gateway = build_gateway(dataclasses.replace(core, settings=settings))  # as `serve` does
    gateway.start()
    try:
        for _ in range(10):
            flood.append(silent_connection(gateway, FLOODER))
        wait_for(lambda: gateway.refused_floods >= 7)
        assert gateway._pending.in_use(FLOODER) == 3
    finally:
        gateway.stop()


def test_the_slots_are_shared_fairly_and_never_exceed_the_caps() -> None:
    slots = PendingSlots(per_client=2, total=3)
    assert slots.acquire("a")
    assert slots.acquire("a")
    assert not slots.acquire("a")  # its share is taken
    assert slots.acquire("b")
    assert not slots.acquire("c")  # all taken
    slots.release("a")
    assert slots.acquire("c")
    for client in ("a", "b", "c"):
        slots.release(client)
    assert slots.in_use() == 0


def test_an_ipv6_client_is_its_64_and_a_mapped_ipv4_address_is_the_ipv4_address() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("fe80::1%eth0") == client_key("fe80::2")
