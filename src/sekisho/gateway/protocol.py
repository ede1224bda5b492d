"""The gateway's wire protocol: one JSON line each way, then raw bytes.

A TLS connection to the gateway starts with a hello line from the client:
  {"v": 1, "op": "open", "token": ..., "target": NAME, "local": "127.0.0.1:8443"}
      opens a session; this connection becomes its control channel, on which the gateway
      later sends {"event": "ended", "reason": ..., "at": ...}.
  {"v": 1, "op": "connect", "token": ..., "session": ID}
      one forwarded connection inside the session; after an ok reply, raw bytes both ways.
  {"v": 1, "op": "standby", "token": ..., "session": ID}
      the same, made ready ahead of need: answered {"ok": true, "standby": true}; the client
      later sends {"op": "go"} and it goes on as a `connect`.
The gateway answers {"ok": true, ...} or {"ok": false, "code": ..., "reason": ...}.

A hello that breaks these rules (not one JSON object, another version, an unknown op, a field
of the wrong type or shape) is answered with a `bad-request` refusal and nothing else happens:
`check_hello` runs before anything reads a field.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from sekisho.domain.errors import InvalidInput
from sekisho.domain.text import check_name, check_text

VERSION = 1
MAX_LINE = 4096
HELLO_TIMEOUT = 10.0
STANDBY_TIMEOUT = 30.0  # a standby connection unused this long is closed
OPS = ("open", "connect", "standby")
TOKEN_MAX = 256


class ProtocolError(Exception):
    pass


def send_line(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")


def read_line(sock: socket.socket, timeout: float = HELLO_TIMEOUT) -> dict[str, Any]:
    """One JSON object terminated by a newline, read without consuming anything after it.

    The peer sends nothing more until it has our answer, so reading in small pieces up to the
    newline never swallows relay bytes.
    """
    deadline = time.monotonic() + timeout
    data = bytearray()
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProtocolError("no complete hello line in time")
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(512, MAX_LINE + 1 - len(data)))
        except TimeoutError as exc:
            raise ProtocolError("no complete hello line in time") from exc
        if not chunk:
            raise ProtocolError("the peer closed before a complete line")
        data += chunk
        if b"\n" in data[:-1] or len(data) > MAX_LINE:
            raise ProtocolError("malformed line: too long or more than one line")
    sock.settimeout(None)
    try:
        message = json.loads(data)
    except ValueError as exc:
        raise ProtocolError("the line is not JSON") from exc
    except RecursionError as exc:  # `[[[[...` nested deeper than the parser recurses
        raise ProtocolError("the line is not JSON: nested too deeply") from exc
    if not isinstance(message, dict):
        raise ProtocolError("the line is not a JSON object")
    return message


def check_hello(hello: dict[str, Any]) -> None:
    """Refuse a hello that is not version 1, names no known op, or carries a field of the wrong
    shape. Text fields follow the rules for stored text (`sekisho.domain.text`): the target is
    recorded in the audit trail and shown on operators' terminals, so it must be a name."""
    version = hello.get("v")
    if type(version) is not int or version != VERSION:  # True == 1 in Python: not a version
        raise ProtocolError(f"unsupported protocol version {_quote(version)}")
    op = hello.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise ProtocolError(f"unknown op {_quote(op)}")
    _field(hello, "token", lambda value: check_text("token", value, max_length=TOKEN_MAX))
    if op == "open":
        _field(hello, "target", lambda value: check_name("target", value))
    else:
        session = hello.get("session")
        if type(session) is not int or session < 1:
            raise ProtocolError("session: the session's id, a positive integer")


def _field(hello: dict[str, Any], key: str, check: Any) -> None:
    value = hello.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{key}: a non-empty string")
    try:
        check(value)
    except InvalidInput as exc:
        raise ProtocolError(str(exc)) from None


def _quote(value: Any) -> str:
    """A client's value in a reason, short and escaped (repr), never raw text."""
    return repr(value if isinstance(value, str | int | float | bool | None) else type(value))[:40]


def refusal(code: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "code": code, "reason": reason, **extra}
