"""The gateway's hello, attacked through a real TLS socket: refused as `bad-request`, quietly.

Each case sends one line to a running gateway and reads the answer line; the gateway's log is
captured to show that no refusal costs a traceback (one per connection would let anyone fill
an operator's log) and that nothing from a refused hello reaches the audit trail.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.gateway import pki, protocol
from sekisho.gateway.server import Gateway
from sekisho.store.tables import AuditRow, SessionRow
from support import LEADER, MEMBER, People, draft

Logged = list[dict[str, Any]]


@pytest.fixture
def logged() -> Iterator[Logged]:
    """Everything the gateway logs while the test runs (its threads included)."""
    with structlog.testing.capture_logs() as entries:
        yield entries


def assert_no_traceback(entries: Logged) -> None:
    loud = [e for e in entries if e.get("exc_info") or e.get("log_level") in ("error", "critical")]
    assert loud == [], f"logged with a traceback: {loud}"


def answer(gateway: Gateway, tls_dir: Path, line: bytes) -> dict[str, Any]:
    """Send one raw line over TLS, as any client could; the gateway's answer line."""
    context = pki.client_context(pki.ensure_ca(tls_dir).cert)
    with context.wrap_socket(
        socket.create_connection(gateway.address, timeout=10), server_hostname="localhost"
    ) as tls:
        tls.sendall(line)
        return protocol.read_line(tls)


def hello(**fields: Any) -> bytes:
    return json.dumps(fields).encode() + b"\n"


def grant(core: Core) -> None:
    request = core.workflow.file(MEMBER, draft(duration="1h"))
    assert core.workflow.approve(LEADER, request.id, "ok").grant is not None


def sessions(core: Core) -> list[SessionRow]:
    with core.db.read() as s:
        return list(s.scalars(select(SessionRow)))


def audit(core: Core) -> list[tuple[int, str, str | None]]:
    with core.db.read() as s:
        rows = s.execute(select(AuditRow.seq, AuditRow.action, AuditRow.object))
        return [tuple(row) for row in rows]


def test_a_deeply_nested_hello_is_refused_without_a_traceback(
    gateway: Gateway, tls_dir: Path, logged: Logged
) -> None:
    for line in (b"[" * 2000 + b"\n", b'{"v":' + b"[" * 2000 + b"\n", b"{" * 3000 + b"\n"):
        refused = answer(gateway, tls_dir, line)
        assert refused["ok"] is False
        assert refused["code"] == "bad-request"
    assert_no_traceback(logged)


@pytest.mark.parametrize("line", [b"not json\n", b"[1, 2]\n", b'"open"\n'])
def test_a_hello_that_is_not_a_json_object_is_refused(
    gateway: Gateway, tls_dir: Path, logged: Logged, line: bytes
) -> None:
    refused = answer(gateway, tls_dir, line)
    assert (refused["ok"], refused["code"]) == (False, "bad-request")
    assert_no_traceback(logged)


@pytest.mark.parametrize("version", [True, 1.0, "1", [1], None, 2])
def test_only_the_integer_1_is_version_1(
    core: Core, gateway: Gateway, tls_dir: Path, people: People, logged: Logged, version: Any
) -> None:
    grant(core)
    token = people.token("member01")
    line = hello(v=version, op="open", token=token, target="prod-admin-console")
    refused = answer(gateway, tls_dir, line)
    assert (refused["ok"], refused["code"]) == (False, "bad-request")
    assert "version" in refused["reason"]
    assert sessions(core) == []
    assert_no_traceback(logged)
    # The same hello with the integer 1 opens the session: the refusal was the version's.
    assert answer(gateway, tls_dir, hello(**{**json.loads(line), "v": 1}))["ok"] is True


TERMINAL_TRICKS = [
    "prod-admin-console\x1b[2J",  # clear the auditor's screen
    "\x1b]8;;https://evil.example/\x07prod-admin-console\x1b]8;;\x07",  # an OSC-8 link
    "prod-admin-console\r\nfake row",  # a line of its own in a table
    "prod-admin-console\u202e",  # a bidi override reversing what follows
    "prod\x00admin",
]


@pytest.mark.parametrize("target", [*TERMINAL_TRICKS, "prod admin", "[red]x[/red]", "", "a" * 129])
def test_an_open_s_target_must_be_a_name(
    core: Core, gateway: Gateway, tls_dir: Path, people: People, logged: Logged, target: str
) -> None:
    """The target reaches the audit trail's `object` and operators' terminals: a name only."""
    grant(core)
    token = people.token("member01")
    before = audit(core)
    line = hello(v=1, op="open", token=token, target=target)
    refused = answer(gateway, tls_dir, line)
    assert (refused["ok"], refused["code"]) == (False, "bad-request")
    assert "target" in refused["reason"]
    assert audit(core) == before  # nothing recorded: no denial naming the target, no session
    assert sessions(core) == []
    assert_no_traceback(logged)


@pytest.mark.parametrize("op", ["open", "connect", "standby"])
def test_a_token_with_control_characters_is_refused_before_any_lookup(
    core: Core, gateway: Gateway, tls_dir: Path, people: People, logged: Logged, op: str
) -> None:
    token = people.token("member01") + "\x1b[2J"
    fields: dict[str, Any] = {"v": 1, "op": op, "token": token}
    fields.update({"target": "prod-admin-console"} if op == "open" else {"session": 1})
    refused = answer(gateway, tls_dir, hello(**fields))
    assert (refused["ok"], refused["code"]) == (False, "bad-request")
    assert "token" in refused["reason"]
    assert_no_traceback(logged)


@pytest.mark.parametrize("session", [True, 1.0, "1", 0, -1, None])
def test_a_connect_names_its_session_by_a_positive_integer(
    gateway: Gateway, tls_dir: Path, people: People, logged: Logged, session: Any
) -> None:
    line = hello(v=1, op="connect", token=people.token("member01"), session=session)
    refused = answer(gateway, tls_dir, line)
    assert (refused["ok"], refused["code"]) == (False, "bad-request")
    assert "session" in refused["reason"]
    assert_no_traceback(logged)


def test_an_unknown_op_is_refused_and_its_reason_escapes_what_it_quotes(
    gateway: Gateway, tls_dir: Path, logged: Logged
) -> None:
    refused = answer(gateway, tls_dir, hello(v=1, op="dance\x1b[2J", token="x"))
    assert (refused["ok"], refused["code"]) == (False, "bad-request")
    assert "\x1b" not in refused["reason"]
    assert_no_traceback(logged)
