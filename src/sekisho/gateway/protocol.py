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
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

VERSION = 1
MAX_LINE = 4096
HELLO_TIMEOUT = 10.0
STANDBY_TIMEOUT = 30.0  # a standby connection unused this long is closed


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
    if not isinstance(message, dict):
        raise ProtocolError("the line is not a JSON object")
    return message


def refusal(code: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "code": code, "reason": reason, **extra}
