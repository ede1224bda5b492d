"""Access ended by another process still ends live sessions: logout, re-enrolment, kill.

The ending is a fact in the store; the gateway honours it from whichever process made it:
at once where an event can travel (in-process, or LISTEN/NOTIFY on PostgreSQL), on every new
connection (the store is read then), and within the re-check interval otherwise. These tests
run the real servers: `sekisho serve --only api` and `sekisho serve --only gateway` as two
processes on one database, and `sekisho user enroll` as an operator's CLI process.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_support import (
    SekishoProcess,
    accepts_tcp,
    answers_http,
    run_cli,
    talk,
    wait_for,
)
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.gateway import pki, protocol
from sekisho.gateway.client import Forwarder, Refused
from sekisho.gateway.server import Gateway
from sekisho.store.tables import AuditRow, SessionRow
from support import ADMIN, LEADER, MEMBER, People, draft, free_port

MakeForwarder = Callable[..., Forwarder]


@pytest.fixture
def clock() -> ManualClock:
    # The servers under test run on the wall clock: this test's own core starts there too.
    return ManualClock(datetime.now(UTC))


def grant(core: Core) -> int:
    request = core.workflow.file(MEMBER, draft(duration="1h"))
    done = core.workflow.approve(LEADER, request.id, "ok")
    assert done.grant is not None
    return done.grant.id


def cut(sock: socket.socket, seconds: float = 5) -> bool:
    """True once the gateway has cut this open connection: no more bytes flow through it.

    Keeps sending while it waits, as a browser would; False if bytes still echo back (or
    nothing at all happens) after `seconds`.
    """
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock.sendall(b"x")
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def session_row(core: Core, session_id: int) -> SessionRow:
    with core.db.read() as s:
        row = s.get(SessionRow, session_id)
        assert row is not None
        return row


def audit_rows(core: Core, action: str) -> list[AuditRow]:
    with core.db.read() as s:
        return list(s.scalars(select(AuditRow).where(AuditRow.action == action)))


def server_env(db_url: str, data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "SEKISHO_DATABASE_URL": db_url, "SEKISHO_DATA_DIR": str(data_dir)}
    env.pop("SEKISHO_SECRET_KEY", None)
    return env


@dataclass
class Servers:
    """`sekisho serve --only api` and `sekisho serve --only gateway`: two processes."""

    api_url: str
    gateway: tuple[str, int]
    ca_pem: str

    def forwarder(self, token: str, **kw: Any) -> Forwarder:
        return Forwarder(
            self.gateway,
            pki.client_context(self.ca_pem),
            token,
            "prod-admin-console",
            server_hostname="localhost",
            **kw,
        )


@pytest.fixture
def servers(
    people: People, gateway_model: None, db_url: str, settings: Settings, tmp_path: Path
) -> Iterator[Servers]:
    api_port, gateway_port = free_port(), free_port()
    env = {
        **server_env(db_url, settings.data_dir),
        "SEKISHO_GATEWAY_PORT": str(gateway_port),
    }
    api = SekishoProcess(
        ["serve", "--only", "api", "--port", str(api_port)], env, tmp_path / "api.log"
    )
    gateway = SekishoProcess(["serve", "--only", "gateway"], env, tmp_path / "gateway.log")
    try:
        api_url = f"http://127.0.0.1:{api_port}"
        api.wait_until(answers_http(f"{api_url}/api/v1/healthz"))
        gateway.wait_until(accepts_tcp(gateway_port))
        ca_pem = httpx.get(f"{api_url}/api/v1/gateway", headers=people.headers("admin01"))
        yield Servers(api_url, ("127.0.0.1", gateway_port), ca_pem.json()["ca_pem"])
    finally:
        gateway.stop()
        api.stop()


# -- two processes: the API ends access, the gateway in the other process cuts ------------


def test_an_api_logout_cuts_the_session_in_the_gateway_process(
    core: Core, servers: Servers, people: People
) -> None:
    grant(core)
    token = people.token("member01")
    forward = servers.forwarder(token)
    forward.open()
    sock = talk(forward.start())

    out = httpx.post(f"{servers.api_url}/api/v1/auth/logout", headers=people.headers("member01"))
    assert out.status_code == 204

    assert cut(sock), "bytes still flow after the logout"
    assert forward.wait(5)
    assert "login" in (forward.end_reason or "")
    with pytest.raises(Refused) as refused:  # the old token opens nothing new
        servers.forwarder(token).open()
    assert refused.value.code == "unauthenticated"
    forward.close()


def test_a_kill_through_the_api_cuts_the_session_and_names_the_killer(
    core: Core, servers: Servers, people: People
) -> None:
    grant(core)
    forward = servers.forwarder(people.token("member01"))
    info = forward.open()
    sock = talk(forward.start())

    answer = httpx.post(
        f"{servers.api_url}/api/v1/sessions/{info.id}/kill",
        headers=people.headers("admin01"),
        json={"reason": "incident 7"},
    )
    assert answer.status_code == 202, answer.text  # recorded; the gateway cuts it
    body = answer.json()
    assert body["killed_by"] == "admin01"
    assert body["kill_reason"] == "incident 7"
    assert body["killed_at"] is not None

    assert cut(sock), "bytes still flow after the kill"
    assert forward.wait(5)
    assert forward.end_reason == "killed by admin01: incident 7"
    wait_for(lambda: session_row(core, info.id).status == "ended")
    row = session_row(core, info.id)
    assert (row.killed_by, row.killed_from, row.kill_reason) == (
        "admin01",
        "127.0.0.1",
        "incident 7",
    )
    assert row.end_reason == "killed by admin01: incident 7"
    (entry,) = audit_rows(core, "session.killed")
    assert (entry.actor, entry.source, entry.subject) == ("admin01", "127.0.0.1", "member01")
    assert entry.detail["reason"] == "incident 7"

    again = httpx.post(
        f"{servers.api_url}/api/v1/sessions/{info.id}/kill", headers=people.headers("admin01")
    )
    assert again.status_code == 409  # it is over, and says so
    forward.close()


def test_session_kill_from_the_cli_says_what_is_true_and_refuses_escapes(
    core: Core, servers: Servers, people: People, db_url: str, tmp_path: Path
) -> None:
    grant(core)
    forward = servers.forwarder(people.token("member01"))
    info = forward.open()
    sock = talk(forward.start())
    env = {
        **server_env(db_url, tmp_path / "admin"),
        "SEKISHO_SERVER": servers.api_url,
        "SEKISHO_TOKEN": people.token("admin01"),
        "SEKISHO_CONFIG_DIR": str(tmp_path / "admin-home"),
    }

    bad = run_cli(["session", "kill", str(info.id), "--reason", "ok\x1b[2Jgone"], env)
    assert bad.returncode == 1
    assert "reason" in bad.stderr + bad.stdout
    assert "control characters" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
    sock.sendall(b"still here")  # refused, so nothing was killed
    assert sock.recv(100) == b"still here"

    done = run_cli(["session", "kill", str(info.id), "--reason", "incident 9"], env)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert f"session #{info.id} of member01" in said
    assert "kill recorded (by admin01)" in said or "ended: killed by admin01" in said
    assert cut(sock)
    assert forward.wait(5)
    assert forward.end_reason == "killed by admin01: incident 9"
    forward.close()


# -- an operator's CLI process ends access under a running gateway ---------------------------


def test_re_enrolling_with_the_cli_cuts_a_running_gateway(
    core: Core, forwarder: MakeForwarder, people: People, db_url: str, tmp_path: Path
) -> None:
    grant(core)
    forward = forwarder()
    forward.open()
    sock = talk(forward.start())

    done = run_cli(["user", "enroll", "member01", "--json"], server_env(db_url, tmp_path / "cli"))
    assert done.returncode == 0, done.stderr

    assert cut(sock), "bytes still flow after the re-enrolment"
    assert forward.wait(5)
    assert "login" in (forward.end_reason or "")
    with pytest.raises(Refused) as refused:
        forwarder().open()  # the same, old token
    assert refused.value.code == "unauthenticated"


def connect_hello(gateway: Gateway, tls_dir: Path, token: str, session_id: int) -> dict[str, Any]:
    context = pki.client_context(pki.ensure_ca(tls_dir).cert)
    with context.wrap_socket(
        socket.create_connection(gateway.address), server_hostname="localhost"
    ) as tls:
        hello = {"v": 1, "op": "connect", "token": token, "session": session_id}
        protocol.send_line(tls, hello)
        return protocol.read_line(tls)


@pytest.fixture
def other_node(core: Core, db_url: str) -> Iterator[Core]:
    """Another sekisho process on the same database, with no event channel to the gateway."""
    from sekisho.store.db import Database

    other = Core(
        db=Database(db_url),
        settings=core.settings,
        provider=core.provider,
        secrets=core.secrets,
        clock=core.clock,
        password_hasher=core.password_hasher,
    )
    yield other
    other.db.dispose()


@pytest.mark.parametrize("how", ["re-enrolled by the CLI", "logged out", "killed"])
def test_every_new_connection_is_checked_against_the_store(
    core: Core,
    other_node: Core,
    gateway: Gateway,
    forwarder: MakeForwarder,
    people: People,
    tls_dir: Path,
    db_url: str,
    tmp_path: Path,
    how: str,
) -> None:
    """No event and no periodic re-check: the next connection alone must see the end."""
    gateway.recheck_every = None
    grant(core)
    token = people.token("member01")
    forward = forwarder(spares=0)
    info = forward.open()
    forward.start()
    assert connect_hello(gateway, tls_dir, token, info.id) == {"ok": True}

    if how == "re-enrolled by the CLI":
        done = run_cli(["user", "enroll", "member01"], server_env(db_url, tmp_path / "cli"))
        assert done.returncode == 0, done.stderr
    elif how == "logged out":
        other_node.identity.logout(other_node.identity.authenticate(token), "elsewhere")
    else:
        other_node.sessions.kill(ADMIN, info.id, "incident 8")

    refusal = connect_hello(gateway, tls_dir, token, info.id)
    assert refusal["ok"] is False
    expected = "killed by admin01: incident 8" if how == "killed" else "login"
    assert expected in refusal["reason"]
    assert forward.wait(5)  # and the refusal ended the session it found over
    forward.close()
