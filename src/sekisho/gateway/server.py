"""The gateway: governed port forwarding over TLS, cut the moment access ends.

Every connection is authorised when it opens, against the store (the login token valid, the
session neither killed nor ended on record, and the decision service saying the user may
`connect` to that target now), and relayed only to the target's address in the access model,
never to an address a client names. When access ends (a grant, a login, a kill), the event
cuts the sessions at once; an end made where no event reaches this process (another process
on SQLite, a lost notification) is found by re-checking every live session against the store
every `recheck_every` seconds, in one read; a timer at each session's own end is the last net.

Threads: one accepts; one per connection does the TLS handshake, the hello, then relays (see
`relay.py` for why one thread owns each TLS socket); one per session owns its control
channel; one watches deadlines and records heartbeats.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from sekisho.bootstrap import Core
from sekisho.domain.access import AccessModel, Target, Verb
from sekisho.domain.access_decisions import AccessDecision
from sekisho.domain.actor import Actor
from sekisho.domain.errors import AuthenticationFailed, Forbidden, InvalidInput
from sekisho.domain.identity import Principal
from sekisho.domain.sessions import Opening, Standing
from sekisho.domain.text import check_text
from sekisho.domain.timespec import iso
from sekisho.gateway import protocol
from sekisho.gateway.limits import PendingSlots, RateLimiter, client_key
from sekisho.gateway.live import LiveSession, Registry
from sekisho.gateway.relay import Cut, Meter, relay
from sekisho.gateway.rlimit import raise_open_files
from sekisho.queries.sessions import SessionView
from sekisho.services.events import EVENTS_MISSED, LOCK_PLACED, Event
from sekisho.services.lease import node_id
from sekisho.store import outage

log = structlog.get_logger(__name__)

HEARTBEAT_EVERY = 5.0
REAP_EVERY = 30.0
RECHECK_EVERY = 1.0  # seconds between re-checks of every live session against the store
# Seconds live sessions go on while the store cannot be read: past that, nothing confirms
# that their access still holds (a revocation may have committed on a node the store still
# reaches), so they end, fail-closed, and forwarders come back once access can be checked.
STORE_GRACE = 15.0
UNAVAILABLE = "sekisho cannot check access now: the database is unavailable; try again soon"
WATCH_TICK = 0.2  # the deadline check's beat


@dataclass(frozen=True)
class GatewayLimits:
    """The gateway's limits; `build_gateway` sets them from `Settings` (docs/gateway.md)."""

    new_connections_per_ip: float = 200.0  # per second, before any authentication
    new_connections_burst: float = 1000.0
    connects_per_user: float = 100.0  # forwarded connections per second per user
    connects_burst: float = 400.0
    opens_per_user: float = 2.0  # sessions per second per user
    opens_burst: float = 10.0
    # Connections accepted whose TLS handshake and hello are not done yet, at once: in all,
    # and per client (an IPv4 address, an IPv6 /64), so that one client's silent connections
    # cannot hold every slot until they time out.
    handshakes: int = 256
    handshakes_per_ip: int = 32
    target_timeout: float = 5.0


@dataclass(frozen=True)
class _Admitted:
    """A session the gateway allows to open: who, on which decision, to which target, and
    until when (the earliest of the grant's end and the session's own limits)."""

    principal: Principal
    decision: AccessDecision
    target: Target
    limits: list[tuple[datetime, str]]
    expires_at: datetime
    expiry_reason: str

    def opening(self, hello: dict[str, Any], source: str, node: str) -> Opening:
        return Opening(
            user=self.principal.name,
            target=self.target.name,
            token_id=self.principal.token_id,
            client_addr=source,
            local_addr=_local_address(hello),
            target_addr=f"{self.target.host}:{self.target.port}",
            node=node,
            expires_at=self.expires_at,
        )

    def live_session(self, session_id: int, wake: socket.socket) -> LiveSession:
        return LiveSession(
            id=session_id,
            user=self.principal.name,
            target=self.target.name,
            token_id=self.principal.token_id,
            grant_id=self.decision.grant_id,
            expires_at=self.expires_at,
            expiry_reason=self.expiry_reason,
            limits=self.limits,
            idle_timeout=self.target.idle_timeout.total_seconds(),
            wake=wake,
            target_addr=(self.target.host, self.target.port),
        )

    def welcome(self, session_id: int) -> dict[str, Any]:
        """The answer to the hello: the session is open."""
        return {
            "ok": True,
            "session": session_id,
            "via": self.decision.reason,
            "expires_at": iso(self.expires_at),
            "ends_because": self.expiry_reason,
            "target": {
                "name": self.target.name,
                "protocol": self.target.protocol.value,
                "dns_name": self.target.dns_name,
                "port": self.target.port,
            },
        }


class Gateway:
    def __init__(
        self,
        core: Core,
        tls: ssl.SSLContext,
        host: str = "127.0.0.1",
        port: int = 8471,
        limits: GatewayLimits | None = None,
    ) -> None:
        self._core = core
        self._tls = tls
        self._bind = (host, port)
        self.limits = limits or GatewayLimits()
        self.node = node_id()
        self.sessions = Registry()
        self._per_ip = RateLimiter(
            self.limits.new_connections_per_ip, self.limits.new_connections_burst
        )
        self._per_user = RateLimiter(self.limits.connects_per_user, self.limits.connects_burst)
        self._opens = RateLimiter(self.limits.opens_per_user, self.limits.opens_burst)
        self._pending = PendingSlots(self.limits.handshakes_per_ip, self.limits.handshakes)
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unsubscribe: Any = None
        self.refused_floods = 0
        # Events do not reach every process that can end access (a CLI on SQLite, the API in
        # another process, a notification lost between nodes): the store is the truth, read
        # for all live sessions at once this often. None: events and new connections only.
        self.recheck_every: float | None = RECHECK_EVERY
        self.store_grace = STORE_GRACE
        self._model: tuple[float, AccessModel] | None = None  # (read at, monotonic; model)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        assert self._listener is not None, "the gateway has not started"
        host, port = self._listener.getsockname()[:2]
        return host, port

    def start(self) -> None:
        raise_open_files()
        listener = socket.create_server(self._bind, reuse_port=False, backlog=1024)
        self._listener = listener
        self._unsubscribe = self._core.bus.subscribe(self._on_event)
        for target, name in ((self._accept_loop, "accept"), (self._watch, "watch")):
            thread = threading.Thread(target=target, name=f"gateway-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._core.sessions.reap_stale()
        log.info("gateway listening", address=f"{self.address[0]}:{self.address[1]}")

    def stop(self, reason: str = "the gateway is stopping") -> None:
        self._stopping.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        for live in self.sessions.all():
            live.end(reason, retry=True)
        deadline = time.monotonic() + 5
        while self.sessions.all() and time.monotonic() < deadline:
            time.sleep(0.01)  # control threads record each session's end
        for thread in self._threads:
            thread.join(timeout=2)

    # -- accepting ------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                raw, peer = self._listener.accept()
            except OSError as exc:
                if self._stopping.is_set() or self._listener.fileno() < 0:
                    return
                # Out of file descriptors or memory, or a connection aborted while queued:
                # passing troubles. Never stop accepting because of one.
                log.warning("accept failed; retrying", error=str(exc))
                self._stopping.wait(0.1)
                continue
            # Flood control before any work: no thread, no TLS for a client over its rate or
            # holding its share of the slots for connections not yet authenticated.
            client = client_key(peer[0])
            if not self._per_ip.allow(client) or not self._pending.acquire(client):
                self.refused_floods += 1
                raw.close()
                continue
            try:
                threading.Thread(
                    target=self._serve, args=(raw, peer, client), name="gateway-conn", daemon=True
                ).start()
            except RuntimeError as exc:  # no thread to be had: a passing trouble, like above
                self._pending.release(client)
                raw.close()
                log.warning("cannot start a connection thread", error=str(exc))

    def _serve(self, raw: socket.socket, peer: tuple[str, int], client: str) -> None:
        source = f"{peer[0]}:{peer[1]}"
        tls: ssl.SSLSocket | None = None
        pending = True  # holding one of the unauthenticated slots, taken as it was accepted
        try:
            raw.settimeout(protocol.HELLO_TIMEOUT)
            # Every line the gateway writes is small and answered: without this, a reply
            # that follows the handshake's last write waits for the peer's delayed ACK (40 ms).
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self._tls.wrap_socket(raw, server_side=True)
            hello = self._hello(tls, source)
            self._pending.release(client)
            pending = False
            if hello is not None:
                self._dispatch(tls, hello, source)
        except (OSError, protocol.ProtocolError, ssl.SSLError) as exc:
            log.debug("connection dropped", peer=source, error=str(exc))
        except Exception:
            log.exception("gateway connection failed", peer=source)
        finally:
            if pending:
                self._pending.release(client)
            (tls or raw).close()

    @staticmethod
    def _hello(tls: ssl.SSLSocket, source: str) -> dict[str, Any] | None:
        """The client's hello line; None when it was not one (refused as a bad request)."""
        try:
            return protocol.read_line(tls)
        except protocol.ProtocolError as exc:
            log.debug("bad hello", peer=source, error=str(exc))
            with contextlib.suppress(OSError):  # a silent or vanished peer may not read it
                protocol.send_line(tls, protocol.refusal("bad-request", str(exc)))
            return None

    def _dispatch(self, tls: ssl.SSLSocket, hello: dict[str, Any], source: str) -> None:
        try:
            protocol.check_hello(hello)
            if hello["op"] == "open":
                self._open(tls, hello, source)
            else:  # connect or standby
                self._connect(tls, hello, source)
        except protocol.ProtocolError as exc:
            protocol.send_line(tls, protocol.refusal("bad-request", str(exc)))
        except Exception as exc:
            if not outage.unavailable(exc):
                raise
            # Fail closed, said once per outage rather than as a traceback per connection.
            outage.watch(self._core.db).failed(exc)
            protocol.send_line(tls, protocol.refusal("unavailable", UNAVAILABLE))

    # -- opening a session ----------------------------------------------------------------

    def _open(self, tls: ssl.SSLSocket, hello: dict[str, Any], source: str) -> None:
        """A session: admitted, on record, held until it ends, and its end on record."""
        with self._core.models.one_version():  # admitted and on record under one model
            opened = self._admit_and_record(tls, hello, source)
        if opened is None:
            return
        admitted, view = opened
        wake_read, wake_write = socket.socketpair()
        live = admitted.live_session(view.id, wake_write)
        self.sessions.add(live)
        # An end that committed while this session opened found no session to cut: ask once
        # more now that every later end will find it.
        self._recheck([live])
        try:
            protocol.send_line(tls, admitted.welcome(view.id))
            self._hold_control(tls, live, wake_read)
        finally:
            live.end(live.ended or "the forwarder disconnected")
            self.sessions.discard(live)
            wake_read.close()
            wake_write.close()
            self._core.sessions.end(live.counters(), live.ended or "closed")

    def _admit_and_record(
        self, tls: ssl.SSLSocket, hello: dict[str, Any], source: str
    ) -> tuple[_Admitted, SessionView] | None:
        """The session admitted and on record, its target answering; None once refused."""
        token, target_name = _text(hello, "token", protocol.TOKEN_MAX), _text(hello, "target", 128)
        admitted = self._admit(tls, token, target_name, source)
        if admitted is None:
            return None
        opening = admitted.opening(hello, source, self.node)
        if not self._target_answers(tls, opening, admitted.target):
            return None
        return admitted, self._core.sessions.open(opening, admitted.decision)

    def _admit(
        self, tls: ssl.SSLSocket, token: str, target_name: str, source: str
    ) -> _Admitted | None:
        """Who opens a session to which target, and until when; None once refused (the
        refusal said on the connection)."""
        principal = self._authenticate(tls, token)
        if principal is None:
            return None
        if not self._opens.allow(principal.name):
            protocol.send_line(tls, protocol.refusal("rate-limited", "too many sessions opened"))
            return None
        try:
            decision = self._core.authz.check(
                Actor(principal.name, source), principal.name, Verb.CONNECT, target_name
            )
        except Forbidden as exc:
            protocol.send_line(tls, protocol.refusal("denied", exc.message))
            return None
        if not decision.allowed:
            routes = [{"template": r.template, "group": r.group} for r in decision.routes]
            protocol.send_line(tls, protocol.refusal("denied", decision.reason, routes=routes))
            return None
        target = self._core.models.model().target(target_name)
        assert target is not None  # the decision allowed it, so the model has it
        limits = [  # what bounds the session whatever carries it
            (principal.expires_at, "your login expired; log in again"),
            (self._core.now() + target.max_session, "the maximum session length was reached"),
        ]
        expires_at, expiry_reason = _session_end(decision, limits)
        return _Admitted(principal, decision, target, limits, expires_at, expiry_reason)

    def _target_answers(self, tls: ssl.SSLSocket, opening: Opening, target: Target) -> bool:
        """Whether the target takes a connection now; if not, the session fails now, with
        the reason, on record."""
        try:
            socket.create_connection(
                (target.host, target.port), timeout=self.limits.target_timeout
            ).close()
        except OSError as exc:
            reason = f"{target.name} ({target.host}:{target.port}) is not answering: {exc}"
            self._core.sessions.refuse(opening, reason)
            protocol.send_line(tls, protocol.refusal("target-unreachable", reason))
            return False
        return True

    def _hold_control(self, tls: ssl.SSLSocket, live: LiveSession, wake: socket.socket) -> None:
        """Own the control channel until the session ends; then say why, on it."""
        tls.setblocking(False)
        said_close = False
        with selectors.DefaultSelector() as sel:
            sel.register(tls, selectors.EVENT_READ)
            sel.register(wake, selectors.EVENT_READ)
            while True:
                sel.select(timeout=None)
                if live.ended is not None:
                    break
                try:
                    data = tls.recv(1024)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                except (OSError, ssl.SSLError):
                    data = b""
                said_close = said_close or b'"close"' in data
                if not data:  # a goodbye first: stopped; none: the forwarder vanished
                    live.end(
                        "the forwarder stopped the session"
                        if said_close
                        else "the forwarder disconnected"
                    )
        tls.setblocking(True)
        tls.settimeout(2)
        ended = {
            "event": "ended",
            "reason": live.ended,
            "at": iso(self._core.now()),
            "retry": live.retry,
        }
        with contextlib.suppress(OSError, ssl.SSLError):  # the forwarder may be gone already
            protocol.send_line(tls, ended)

    # -- one forwarded connection ---------------------------------------------------------

    def _connect(self, tls: ssl.SSLSocket, hello: dict[str, Any], source: str) -> None:
        """One forwarded connection, at once (`connect`) or from a standby (`standby`)."""
        live = self._session_for(tls, hello)
        if live is None:
            return
        if hello.get("op") == "standby":
            # Ready ahead of need: the TLS handshake and this check are off the critical
            # path. The session's end cuts it like any connection of the session.
            standby = Cut()
            if not live.add_standby(standby):
                return
            standby.attach(tls)
            try:
                protocol.send_line(tls, {"ok": True, "standby": True})
                go = protocol.read_line(tls, timeout=protocol.STANDBY_TIMEOUT)
            finally:
                live.remove_standby(standby)
            if go.get("op") != "go":
                raise protocol.ProtocolError("a standby connection expects go")
        if not self._per_user.allow(live.user):
            protocol.send_line(tls, protocol.refusal("rate-limited", "too many connections"))
            return
        refusal = self._still_allowed(live)
        if refusal is not None:
            protocol.send_line(tls, refusal)
            return
        host, port = live.target_addr
        try:
            upstream = socket.create_connection((host, port), timeout=self.limits.target_timeout)
        except OSError as exc:
            reason = f"{live.target} ({host}:{port}) is not answering: {exc}"
            protocol.send_line(tls, protocol.refusal("target-unreachable", reason))
            return
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        meter, cut = Meter(), Cut()
        try:
            if not live.add(cut, meter):
                return
            cut.attach(tls, upstream)
            protocol.send_line(tls, {"ok": True})
            relay(tls, upstream, meter, up_is_plain=False)
        finally:
            live.remove(cut)
            upstream.close()

    def _session_for(self, tls: ssl.SSLSocket, hello: dict[str, Any]) -> LiveSession | None:
        """The live session this connection belongs to, if its token is the session's."""
        token = _text(hello, "token", 256)
        session_id = hello.get("session")
        live = self.sessions.get(session_id) if isinstance(session_id, int) else None
        token_id = hashlib.sha256(token.encode()).hexdigest()
        if live is None or live.ended is not None or live.token_id != token_id:
            protocol.send_line(tls, protocol.refusal("no-session", "no such live session"))
            return None
        return live

    def _still_allowed(self, live: LiveSession) -> dict[str, Any] | None:
        """Authorise a connection as it opens, against the store; a refusal line if access is
        gone (and then the session ends: what refuses this connection ends them all).

        One read transaction: the login, the session's record and the decision, so an end
        made by any process (a logout, a re-enrolment, a kill, a grant's end) refuses the
        very next connection, event or no event.
        """
        expired = self._core.now() >= live.expires_at
        self._recheck([live], live.expiry_reason if expired else None)
        if live.ended is not None:
            return protocol.refusal("denied", live.ended)
        return None

    def _authenticate(self, tls: ssl.SSLSocket, token: str) -> Principal | None:
        try:
            return self._core.identity.authenticate(token)
        except AuthenticationFailed as exc:
            protocol.send_line(tls, protocol.refusal("unauthenticated", exc.message))
            return None

    # -- ending sessions ------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        """Pushed by the services as soon as access changes (and by the event bridge when
        events may have been missed); never polled."""
        reason = event.data.get("reason", "")
        if event.name == "grant.ended" and event.grant_id is not None:
            # The user's other sessions too: one may have been re-bound to this grant by a
            # re-check that read it as active just before it ended.
            affected = {s.id: s for s in self.sessions.carried_by(event.grant_id)}
            affected.update((s.id, s) for s in self.sessions.of_user(event.user or ""))
            why = f"grant #{event.grant_id} ended ({reason})"
            self._recheck(list(affected.values()), why, grant_id=event.grant_id)
        elif event.name == "grant.extended" and event.grant_id is not None:
            # Its end moved later: the sessions it carries go on, now until the new end
            # (without this they would go on too: at the old end they are asked again).
            self._recheck(self.sessions.carried_by(event.grant_id))
        elif event.name == "tokens.revoked" and event.user:
            token_id = event.data.get("token_id")
            for live in self.sessions.of_user(event.user):
                if not token_id or live.token_id == token_id:
                    live.end(f"the login that opened it ended: {reason}")
        elif event.name == "session.kill":
            killed = self.sessions.get(int(event.data.get("session_id", "0")))
            if killed is not None:
                killed.end(reason or "killed")
        elif event.name == LOCK_PLACED:
            # The store says which sessions the lock covers, and its reason.
            covered = self.sessions.of_user(event.user) if event.user else self.sessions.all()
            self._recheck(covered)
        elif event.name == "model.loaded":
            self._recheck(self.sessions.all(), "the access model changed", fresh_model=True)
        elif event.name == EVENTS_MISSED:
            self._recheck(self.sessions.all(), fresh_model=True)

    def _recheck(
        self,
        lives: list[LiveSession],
        why: str | None = None,
        *,
        grant_id: int | None = None,
        fresh_model: bool = False,
    ) -> None:
        """Decide sessions again from the store, in one read: carry on or end each.

        `why` names what happened when access is what ended it (for the sessions carried by
        `grant_id`, if given); otherwise the store says why. Each session's re-checks are
        serialised by its own lock (taken in id order, so batches never deadlock), and the
        store is read under it: a re-check that reads later also applies later, so a re-bind
        to a grant that ends meanwhile is always undone by that grant's own end event.
        The access model is read from the store at most once a re-check interval (and on
        `fresh_model`): a model loaded elsewhere takes effect like any change made elsewhere.
        """
        lives = sorted((live for live in lives if live.ended is None), key=lambda live: live.id)
        if not lives:
            return
        with contextlib.ExitStack() as held:
            for live in lives:
                held.enter_context(live.checking)
            carried = [live.carried() for live in lives]
            standings, model = self._core.sessions.standing(
                carried, self._cached_model(fresh_model)
            )
            self._model = (time.monotonic(), model)
            for live in lives:
                told = why if grant_id is None or live.grant_id == grant_id else None
                self._apply(live, standings[live.id], told)

    def _cached_model(self, fresh: bool) -> AccessModel | None:
        """The model read at most a re-check interval ago, unless `fresh`; None: read it with
        the store's truth. Every forwarded connection is checked, and reading the model each
        time would double the check's cost."""
        cached = self._model
        if fresh or cached is None or time.monotonic() - cached[0] >= (self.recheck_every or 0):
            return None
        return cached[1]

    def _apply(self, live: LiveSession, standing: Standing, why: str | None) -> None:
        decision = standing.decision
        if decision is None:
            live.end(why if why and standing.withdrawn else standing.ended)
            return
        if standing.target_addr is not None:  # the model may have moved it
            live.target_addr = standing.target_addr
        # Another grant (or standing access) still allows it: overlapping grants never cut
        # each other. The session now lasts as long as what carries it.
        live.grant_id = decision.grant_id
        live.expires_at, live.expiry_reason = _session_end(decision, live.limits)
        if self._core.now() >= live.expires_at:  # the login's end or the length cap
            live.end(live.expiry_reason)

    def _watch(self) -> None:
        """Deadlines (a session's end, idleness), the periodic re-check against the store,
        heartbeats, and reaping dead gateways' rows. A store that cannot be read is logged
        once, until a read succeeds again; past the grace, live sessions end (fail-closed)."""
        turn = _WatchTurn(time.monotonic(), self.recheck_every)
        while not self._stopping.wait(self._watch_pause(turn.next_recheck)):
            try:
                read_store = self._watch_turn(turn)
            except Exception:
                if not turn.failing:  # once per outage, not five times a second
                    log.exception("gateway watch failed; retrying (sessions still end on time)")
                turn.failing = True
                if self.recheck_every is not None:
                    self._fail_closed(time.monotonic() - turn.confirmed)
                continue
            if read_store and turn.failing:
                log.info("gateway watch recovered")
                turn.failing = False

    def _watch_turn(self, turn: _WatchTurn) -> bool:
        """One turn of the watch; True if it read the store (and so the store answers)."""
        self.check_deadlines()
        now, read_store = time.monotonic(), False
        if self.recheck_every is not None and now >= turn.next_recheck:
            turn.next_recheck = now + self.recheck_every
            self._recheck(self.sessions.all(), fresh_model=True)
            turn.confirmed, read_store = now, True
        if now - turn.last_beat >= HEARTBEAT_EVERY:
            self._core.sessions.heartbeat([s.counters() for s in self.sessions.all()])
            turn.last_beat, read_store = now, True
        if now - turn.last_reap >= REAP_EVERY:
            self._core.sessions.reap_stale()
            turn.last_reap, read_store = now, True
        return read_store

    def _fail_closed(self, unconfirmed_for: float) -> None:
        """End every live session once the store has been unreadable past the grace: they
        end as the gateway stopping does (`retry`), so forwarders reconnect, and are let back
        in only when the store says access still holds."""
        if unconfirmed_for < self.store_grace:
            return
        why = (
            f"access could not be confirmed for {int(unconfirmed_for)}s (the database is "
            "unavailable); reconnecting once it is back"
        )
        for live in self.sessions.all():
            live.end(why, retry=True)

    def _watch_pause(self, next_recheck: float) -> float:
        """Until the next deadline check, or sooner when the periodic re-check is due."""
        if self.recheck_every is None:
            return WATCH_TICK
        return max(0.0, min(WATCH_TICK, next_recheck - time.monotonic()))

    def check_deadlines(self) -> None:
        now, mono = self._core.now(), time.monotonic()
        unreadable: Exception | None = None
        for live in self.sessions.all():
            if now >= live.expires_at:
                # Ask again rather than end outright: an overlapping grant may carry it on.
                try:
                    self._recheck([live], live.expiry_reason)
                except Exception as exc:
                    # The store cannot say whether anything carries it on: it ends at its
                    # known end, never later.
                    live.end(live.expiry_reason)
                    unreadable = exc
            elif live.idle_for(mono) >= live.idle_timeout:
                live.end(f"idle for {int(live.idle_timeout)}s (the target's idle timeout)")
        if unreadable is not None:
            raise unreadable  # for the watch to log


class _WatchTurn:
    """What the watch remembers between turns (monotonic seconds)."""

    def __init__(self, now: float, recheck_every: float | None) -> None:
        self.last_beat = self.last_reap = self.confirmed = now
        self.next_recheck = now + (recheck_every or 0)
        self.failing = False


def _session_end(
    decision: AccessDecision, limits: list[tuple[datetime, str]]
) -> tuple[datetime, str]:
    """The earliest of the grant's end and the session's own limits, and why it is that."""
    candidates = list(limits)
    if decision.grant_end is not None:
        candidates.append((decision.grant_end, f"grant #{decision.grant_id} ended (expired)"))
    return min(candidates, key=lambda c: c[0])


def _text(hello: dict[str, Any], key: str, limit: int, *, required: bool = True) -> str:
    """A text field of the hello: a string within `limit`, free of control characters
    (`protocol.check_hello` has checked each field's shape; this guards every reader)."""
    value = hello.get(key, "")
    if not isinstance(value, str) or len(value) > limit or (required and not value):
        raise protocol.ProtocolError(f"{key}: a string of at most {limit} characters")
    try:
        check_text(key, value, max_length=limit)
    except InvalidInput as exc:
        raise protocol.ProtocolError(str(exc)) from None
    return value


# host:port as the forwarder names where it listens; an IPv6 host bare or in brackets.
_LOCAL_ADDRESS = re.compile(r"(?:[A-Za-z0-9.:%_-]{1,120}|\[[0-9A-Fa-f:.]{2,45}\]:[0-9]{1,5})?")


def _local_address(hello: dict[str, Any]) -> str:
    """The forwarder's own claim, stored on the session: an address, never markup or escapes
    that would reach an operator's terminal or a page."""
    value = _text(hello, "local", 128, required=False)
    if not _LOCAL_ADDRESS.fullmatch(value):
        raise protocol.ProtocolError("local: an address as host:port")
    return value
