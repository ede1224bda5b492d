"""The client side of `sekisho forward`: a local listener carried to a target by the gateway.

It opens a session (the control channel), then carries each local connection to the gateway
over its own TLS connection, authorised there when it opens. When the gateway ends the
session, every local connection is closed and the reason is reported. If the gateway itself
goes away, the forwarder keeps reconnecting, with backoff, for as long as access holds: until
the session's own end (which the gateway said when it opened), or until the API says access
ended; then it reports that, the true reason, not the unreachable gateway.
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
from datetime import UTC, datetime
from typing import Any

from sekisho.gateway import protocol
from sekisho.gateway.relay import Cut, Meter, relay
from sekisho.gateway.rlimit import raise_open_files

CONNECT_TIMEOUT = 10.0
# A refill waits this long while a spare is left: its TLS handshake then runs after the
# connection that took a spare has started, not beside it (on two cores that doubled the
# connect time). With none left, it refills at once.
REFILL_DELAY = 0.01
SPARES = 4  # standby connections kept ready: a browser opens a few at once
SPARE_MAX_AGE = 20.0  # the gateway drops a standby connection unused for 30 s
RETRY_PAUSE = (0.5, 10.0)  # reconnecting: the first pause, doubled up to the last


# Refusals that say "not now", not "no": a reconnect goes on trying (with backoff).
PASSING_REFUSALS = frozenset({"unavailable", "rate-limited"})


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
        reconnect_for: float | None = None,
        still_allowed: Callable[[], str | None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry_pause: tuple[float, float] = RETRY_PAUSE,
        spares: int = SPARES,
        notice: Callable[[str], None] = lambda _message: None,
    ) -> None:
        """`still_allowed` asks (the API) whether access holds: None if it does or nobody
        can tell, else why not. `clock` is the gateway's time, which the session's end is
        in. `reconnect_for` caps the reconnecting (seconds; None: while access holds)."""
        self._gateway, self._tls = gateway, tls
        self._server_hostname = server_hostname or gateway[0]
        self._token, self._target = token, target
        self._bind = (bind, local_port)
        self._reconnect_for = reconnect_for
        self._still_allowed, self._clock, self._retry_pause = still_allowed, clock, retry_pause
        self._notice = notice
        self._listener: socket.socket | None = None
        self._control: ssl.SSLSocket | None = None
        self._wake_read, self._wake_write = socket.socketpair()
        self._cuts: set[Cut] = set()
        # Standby connections to the gateway, TLS and check done, for the next local ones.
        self._spare_target = spares
        self._spares: list[tuple[ssl.SSLSocket, int, float]] = []  # socket, session, made at
        self._spare_wanted = threading.Event()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._closing = False
        self.session: SessionInfo | None = None
        self.end_reason: str | None = None
        self.ended_at: str | None = None  # the gateway's time, when it ended the session
        self.access_ended = False  # False: stopped here (Ctrl-C, or reconnect_for ran out)
        self.unreachable_since: datetime | None = None
        self.reconnect_attempts = 0  # failed tries to reach the gateway again, in all

    @property
    def ended_by_gateway(self) -> bool:
        return self.access_ended

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

    def listen(self) -> tuple[str, int]:
        """Take the local address now (OSError if it cannot be had: a port in use), before
        any session is opened, so a bad address opens nothing at the gateway."""
        if self._listener is None:
            raise_open_files()
            self._listener = socket.create_server(self._bind, backlog=256)
        host, port = self._listener.getsockname()[:2]
        return host, port

    def start(self) -> tuple[str, int]:
        """Listen locally (if `listen` has not yet) and carry connections; the local address."""
        host, port = self.listen()
        workers = [(self._accept_loop, "accept"), (self._hold_control, "control")]
        if self._spare_target:
            workers.append((self._keep_spares, "spares"))
        for target, name in workers:
            threading.Thread(target=target, name=f"forward-{name}", daemon=True).start()
        return host, port

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the forward has ended; True if it did."""
        return self._done.wait(timeout)

    def close(self, reason: str = "stopped by the user") -> None:
        """End the session from this side (Ctrl-C)."""
        self._closing = True
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")
        self._finish(reason, access_ended=False)

    # -- the control channel --------------------------------------------------------------

    def _hold_control(self) -> None:
        while not self._done.is_set():
            ended = self._read_control()
            if ended is not None:
                self._finish(ended, access_ended=True)
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
        """The gateway went away: open a new session, with backoff, while access holds."""
        since = self.unreachable_since = self._clock()
        self._notice(f"lost the gateway at {_hms(since)}; reconnecting while access holds")
        started, pause, tries = time.monotonic(), self._retry_pause[0], 0
        while not self._closing:
            try:
                session = self.open()
            except Refused as exc:
                if exc.code not in PASSING_REFUSALS:
                    self._finish(f"access refused on reconnect: {exc.reason}", access_ended=True)
                    return
                failure: Exception = exc  # the gateway cannot check access now: not a no
            except (GatewayUnreachable, OSError) as exc:
                failure = exc
            else:
                self.unreachable_since = None
                self._notice(f"reconnected: session #{session.id}")
                return
            self.reconnect_attempts, tries = self.reconnect_attempts + 1, tries + 1
            if self._gave_up(since, started):
                return
            if tries == 1 or pause >= self._retry_pause[1]:  # then every longest pause
                self._notice(_retrying(since, failure))
            self._done.wait(pause)
            pause = min(pause * 2, self._retry_pause[1])

    def _gave_up(self, since: datetime, started: float) -> bool:
        """Whether to stop reconnecting (and the forward ended, with the true reason)."""
        ended = self._access_end(since)
        if ended is not None:
            self._finish(ended, access_ended=True)
            return True
        if self._reconnect_for is not None and time.monotonic() - started >= self._reconnect_for:
            self._finish(
                f"gave up reconnecting after {self._reconnect_for:g} s: the gateway is "
                f"unreachable since {_hms(since)} (access still held)",
                access_ended=False,
            )
            return True
        return False

    def _access_end(self, since: datetime) -> str | None:
        """Why access has ended while the gateway was away, or None if it still holds."""
        away = f"while the gateway was unreachable (since {_hms(since)})"
        session = self.session
        end = _parse_time(session.expires_at) if session else None
        if session is not None and end is not None and self._clock() >= end:
            because = session.ends_because or "the session's time ran out"
            return f"{because} at {session.expires_at}, {away}"
        if self._still_allowed is None:
            return None
        try:
            refused = self._still_allowed()
        except Exception as exc:  # asking is a courtesy: the session's end still bounds this
            self._notice(f"could not ask whether access holds: {exc}")
            return None
        return f"{refused} ({away})" if refused else None

    def _finish(self, reason: str, *, access_ended: bool) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.end_reason, self.access_ended = reason, access_ended
            cuts = list(self._cuts)
            spares, self._spares = self._spares, []
            self._done.set()
        self._spare_wanted.set()
        for spare, _session, _made in spares:
            spare.close()
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
            except OSError as exc:
                if self._done.is_set() or self._listener.fileno() < 0:
                    return
                self._notice(f"accept failed ({exc}); retrying")  # out of descriptors: wait
                self._done.wait(0.1)
                continue
            threading.Thread(
                target=self._carry, args=(local,), name="forward-conn", daemon=True
            ).start()

    def _carry(self, local: socket.socket) -> None:
        cut, meter = Cut(), Meter()
        with self._lock:
            self._cuts.add(cut)
        tls: ssl.SSLSocket | None = None
        try:
            if self.session is None or self._done.is_set():
                return
            tls, reply = self._go()
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

    def _go(self) -> tuple[ssl.SSLSocket, dict[str, Any]]:
        """A gateway connection for one local connection: a standby one if ready, else new."""
        spare = self._take_spare()
        if spare is not None:
            try:
                protocol.send_line(spare, {"op": "go"})
                return spare, protocol.read_line(spare, timeout=CONNECT_TIMEOUT)
            except (OSError, protocol.ProtocolError):
                spare.close()  # it went stale on the gateway's side: dial afresh
        session = self.session
        assert session is not None
        tls = self._dial()
        hello = {"v": protocol.VERSION, "op": "connect", "token": self._token}
        protocol.send_line(tls, {**hello, "session": session.id})
        return tls, protocol.read_line(tls, timeout=CONNECT_TIMEOUT)

    def _take_spare(self) -> ssl.SSLSocket | None:
        session = self.session
        with self._lock:
            while self._spares:
                spare, for_session, made = self._spares.pop(0)
                fresh = time.monotonic() - made < SPARE_MAX_AGE
                if fresh and session is not None and for_session == session.id:
                    self._spare_wanted.set()
                    return spare
                spare.close()
        self._spare_wanted.set()
        return None

    def _keep_spares(self) -> None:
        """Keep a few standby connections ready, so a new local connection skips the TLS
        handshake and the session check: they were done ahead of need."""
        while not self._done.is_set():
            self._spare_wanted.wait(timeout=1.0)
            with self._lock:
                left = len(self._spares)
            if left:
                self._done.wait(REFILL_DELAY)
            self._spare_wanted.clear()
            with self._lock:
                now = time.monotonic()
                stale = [s for s in self._spares if now - s[2] >= SPARE_MAX_AGE]
                self._spares = [s for s in self._spares if now - s[2] < SPARE_MAX_AGE]
                missing = self._spare_target - len(self._spares)
            for spare, _session, _made in stale:
                spare.close()
            for _ in range(max(0, missing)):
                made = self._standby()
                if made is None:
                    break
                with self._lock:
                    if self._done.is_set():
                        made[0].close()
                        return
                    self._spares.append(made)

    def _standby(self) -> tuple[ssl.SSLSocket, int, float] | None:
        session = self.session
        if session is None:
            return None
        try:
            tls = self._dial()
            hello = {"v": protocol.VERSION, "op": "standby", "token": self._token}
            protocol.send_line(tls, {**hello, "session": session.id})
            reply = protocol.read_line(tls, timeout=CONNECT_TIMEOUT)
        except (OSError, protocol.ProtocolError, GatewayUnreachable):
            return None
        if not reply.get("standby"):
            tls.close()
            return None
        return tls, session.id, time.monotonic()

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


def _hms(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S")


def _parse_time(value: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _retrying(since: datetime, failure: Exception) -> str:
    if isinstance(failure, Refused):
        return f"the gateway cannot check access now ({failure.reason}); retrying"
    return f"the gateway is unreachable since {_hms(since)}; retrying ({failure})"


def _ended(line: bytes) -> dict[str, Any] | None:
    """The gateway's "ended" event, if this line is one."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if isinstance(message, dict) and message.get("event") == "ended":
        return message
    return None
