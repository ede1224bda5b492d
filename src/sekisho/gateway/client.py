"""The client side of `sekisho forward`: a local listener carried to a target by the gateway.

It opens a session (the control channel), then carries each local connection to the gateway
over its own TLS connection, authorised there when it opens. When the gateway ends the
session, every local connection is closed and the reason is reported. If the gateway itself
goes away, the forwarder reconnects for a while, but only if access is still allowed.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sekisho.gateway import protocol
from sekisho.gateway.relay import Cut, Meter, relay

CONNECT_TIMEOUT = 10.0


class Refused(Exception):
    """The gateway said no; `code` is machine-readable, the message says why."""

    def __init__(self, code: str, reason: str, routes: list[dict[str, str]] | None = None):
        super().__init__(reason)
        self.code, self.reason, self.routes = code, reason, routes or []


class GatewayUnreachable(Exception):
    pass


@dataclass(frozen=True)
class SessionInfo:
    id: int
    via: str
    expires_at: str
    ends_because: str
    target: dict[str, Any]


class Forwarder:
    def __init__(
        self,
        gateway: tuple[str, int],
        tls: ssl.SSLContext,
        token: str,
        target: str,
        *,
        server_hostname: str | None = None,
        bind: str = "127.0.0.1",
        local_port: int = 0,
        reconnect_for: float = 30.0,
        notice: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self._gateway, self._tls = gateway, tls
        self._server_hostname = server_hostname or gateway[0]
        self._token, self._target = token, target
        self._bind = (bind, local_port)
        self._reconnect_for = reconnect_for
        self._notice = notice
        self._listener: socket.socket | None = None
        self._control: ssl.SSLSocket | None = None
        self._wake_read, self._wake_write = socket.socketpair()
        self._cuts: set[Cut] = set()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._closing = False
        self.session: SessionInfo | None = None
        self.end_reason: str | None = None
        self.ended_at: str | None = None  # the gateway's time, when it ended the session
        self.ended_by_gateway = False

    # -- what `sekisho forward` calls -----------------------------------------------------

    def open(self) -> SessionInfo:
        """Open the session; raises Refused (with the reason) or GatewayUnreachable."""
        control = self._dial()
        try:
            hello = {"v": protocol.VERSION, "op": "open", "token": self._token}
            local = f"{self._bind[0]}:{self._bind[1]}"
            protocol.send_line(control, {**hello, "target": self._target, "local": local})
            reply = protocol.read_line(control, timeout=CONNECT_TIMEOUT * 2)
        except (OSError, protocol.ProtocolError) as exc:
            control.close()
            raise GatewayUnreachable(f"the gateway did not answer: {exc}") from exc
        if not reply.get("ok"):
            control.close()
            raise Refused(
                str(reply.get("code", "refused")),
                str(reply.get("reason", "refused")),
                reply.get("routes"),
            )
        self._control = control
        self.session = SessionInfo(
            id=int(reply["session"]),
            via=str(reply.get("via", "")),
            expires_at=str(reply.get("expires_at", "")),
            ends_because=str(reply.get("ends_because", "")),
            target=dict(reply.get("target") or {}),
        )
        return self.session

    def start(self) -> tuple[str, int]:
        """Listen locally and carry connections; returns the local address."""
        listener = socket.create_server(self._bind, backlog=256)
        self._listener = listener
        for target, name in ((self._accept_loop, "accept"), (self._hold_control, "control")):
            threading.Thread(target=target, name=f"forward-{name}", daemon=True).start()
        host, port = listener.getsockname()[:2]
        return host, port

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the forward has ended; True if it did."""
        return self._done.wait(timeout)

    def close(self, reason: str = "stopped by the user") -> None:
        """End the session from this side (Ctrl-C)."""
        self._closing = True
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")
        self._finish(reason, by_gateway=False)

    # -- the control channel --------------------------------------------------------------

    def _hold_control(self) -> None:
        while not self._done.is_set():
            ended = self._read_control()
            if ended is not None:
                self._finish(ended, by_gateway=True)
                return
            if self._closing:
                return
            self._reconnect()

    def _read_control(self) -> str | None:
        """The gateway's reason when it ends the session; None when the channel was lost."""
        control = self._control
        assert control is not None
        control.setblocking(False)
        buffer = bytearray()
        with selectors.DefaultSelector() as sel:
            sel.register(control, selectors.EVENT_READ)
            sel.register(self._wake_read, selectors.EVENT_READ)
            while True:
                sel.select()
                if self._closing:
                    with contextlib.suppress(OSError, ssl.SSLError):
                        control.setblocking(True)
                        control.settimeout(2)
                        protocol.send_line(control, {"op": "close"})
                    control.close()
                    return None
                try:
                    chunk = control.recv(4096)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                except (OSError, ssl.SSLError):
                    chunk = b""
                if not chunk:
                    control.close()
                    return None
                buffer += chunk
                while b"\n" in buffer:
                    line, _, rest = bytes(buffer).partition(b"\n")
                    buffer = bytearray(rest)
                    ended = _ended(line)
                    if ended is not None:
                        control.close()
                        if ended.get("retry"):  # the gateway restarts: not an end of access
                            self._notice(f"the gateway said: {ended.get('reason')}")
                            return None
                        self.ended_at = ended.get("at")
                        return str(ended.get("reason") or "ended by the gateway")

    def _reconnect(self) -> None:
        """The gateway went away: open again while access still holds, for a while."""
        self._notice("lost the gateway; reconnecting ...")
        deadline, pause = time.monotonic() + self._reconnect_for, 0.5
        while time.monotonic() < deadline and not self._closing:
            try:
                session = self.open()
            except Refused as exc:
                self._finish(f"access refused on reconnect: {exc.reason}", by_gateway=True)
                return
            except (GatewayUnreachable, OSError):
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            self._notice(f"reconnected: session #{session.id}")
            return
        self._finish("the gateway is unreachable", by_gateway=True)

    def _finish(self, reason: str, *, by_gateway: bool) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.end_reason, self.ended_by_gateway = reason, by_gateway
            cuts = list(self._cuts)
            self._done.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        for cut in cuts:
            cut(reason)

    # -- carrying local connections -------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._done.is_set():
            try:
                local, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(
                target=self._carry, args=(local,), name="forward-conn", daemon=True
            ).start()

    def _carry(self, local: socket.socket) -> None:
        cut, meter = Cut(), Meter()
        with self._lock:
            self._cuts.add(cut)
        tls: ssl.SSLSocket | None = None
        try:
            session = self.session
            if session is None or self._done.is_set():
                return
            tls = self._dial()
            hello = {"v": protocol.VERSION, "op": "connect", "token": self._token}
            protocol.send_line(tls, {**hello, "session": session.id})
            reply = protocol.read_line(tls, timeout=CONNECT_TIMEOUT)
            if not reply.get("ok"):
                self._notice(f"connection refused: {reply.get('reason', 'refused')}")
                return
            local.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cut.attach(local, tls)
            relay(tls, local, meter, up_is_plain=True)
        except (OSError, protocol.ProtocolError, GatewayUnreachable) as exc:
            self._notice(f"connection failed: {exc}")
        finally:
            with self._lock:
                self._cuts.discard(cut)
            local.close()
            if tls is not None:
                tls.close()

    def _dial(self) -> ssl.SSLSocket:
        try:
            raw = socket.create_connection(self._gateway, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            host, port = self._gateway
            raise GatewayUnreachable(f"cannot reach the gateway at {host}:{port}: {exc}") from exc
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self._tls.wrap_socket(raw, server_hostname=self._server_hostname)
        except (OSError, ssl.SSLError) as exc:
            raw.close()
            raise GatewayUnreachable(f"TLS with the gateway failed: {exc}") from exc
        tls.settimeout(None)
        return tls


def _ended(line: bytes) -> dict[str, Any] | None:
    """The gateway's "ended" event, if this line is one."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if isinstance(message, dict) and message.get("event") == "ended":
        return message
    return None
