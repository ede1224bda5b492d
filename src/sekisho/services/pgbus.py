"""Events between nodes sharing PostgreSQL: LISTEN/NOTIFY carries the in-process bus across.

A revocation on node A must cut a gateway session on node B at once. Each node forwards its
own events with NOTIFY and republishes the other nodes' events on its local bus. An event a
node received from another is never sent on again, so nothing loops.

Connections die (a database restart, a failover, an admin's pg_terminate_backend). A send
that fails is sent again on a new connection, in order, for a bounded time; the publisher
never waits for it (one sender thread drains a queue). NOTIFY reaches only the listeners
connected when it commits, so after the listener reconnects the node publishes
EVENTS_MISSED locally: the gateway then re-reads every live session from the store.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from sqlalchemy.engine import make_url

from sekisho.services.events import EVENTS_MISSED, Event, EventBus
from sekisho.services.lease import node_id

log = structlog.get_logger(__name__)

SEND_ATTEMPTS = 8  # then give up on that event: the gateways' re-check finds the change
RETRY_FIRST, RETRY_MAX = 0.05, 2.0  # seconds between attempts (sending and listening)
CHANNEL = "sekisho_events"
ORIGIN = "origin"  # set on events that came from another node
# What other nodes need to hear: access changes (gateways cut sessions) and work to do.
CARRIED = frozenset(
    {
        "grant.ended",
        "grant.activated",
        "grant.extended",
        "tokens.revoked",
        "session.kill",
        "model.loaded",
        "request.filed",
        "request.decided",
    }
)


def libpq_url(sqlalchemy_url: str) -> str:
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def encode(event: Event, origin: str) -> str:
    return json.dumps(
        {
            "origin": origin,
            "name": event.name,
            "at": event.at.isoformat(),
            "request_id": event.request_id,
            "grant_id": event.grant_id,
            "user": event.user,
            "group": event.group,
            "data": event.data,
        },
        separators=(",", ":"),
    )


def decode(payload: str) -> tuple[str, Event]:
    raw: dict[str, Any] = json.loads(payload)
    data = {str(k): str(v) for k, v in (raw.get("data") or {}).items()}
    origin = str(raw["origin"])
    event = Event(
        name=str(raw["name"]),
        at=datetime.fromisoformat(raw["at"]),
        request_id=raw.get("request_id"),
        grant_id=raw.get("grant_id"),
        user=raw.get("user"),
        group=raw.get("group"),
        data={**data, ORIGIN: origin},
    )
    return origin, event


class PostgresEventBridge:
    def __init__(self, database_url: str, bus: EventBus, node: str | None = None) -> None:
        self._url = libpq_url(database_url)
        self._bus = bus
        self.node = node or node_id()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._sender: psycopg.Connection[Any] | None = None
        self._outgoing: queue.Queue[tuple[str, str]] = queue.Queue()  # (event name, payload)
        self._threads: list[threading.Thread] = []
        self._unsubscribe: Any = None

    def start(self) -> None:
        self._sender = self._connect()
        for target, name in ((self._listen, "pg-events"), (self._send_loop, "pg-events-send")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self._ready.wait(10):
            raise RuntimeError("could not LISTEN for sekisho events on PostgreSQL")
        self._unsubscribe = self._bus.subscribe(self._forward)

    def stop(self) -> None:
        """Stop listening; events already queued are still sent (or given up on)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._sender is not None:
            self._sender.close()

    # -- sending --------------------------------------------------------------------------

    def _forward(self, event: Event) -> None:
        if event.name not in CARRIED or ORIGIN in event.data:
            return  # not for other nodes, or it came from one
        self._outgoing.put((event.name, encode(event, self.node)))

    def _send_loop(self) -> None:
        """One thread sends, in publishing order, until stopped and drained."""
        while True:
            try:
                name, payload = self._outgoing.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            self._send(name, payload)

    def _send(self, name: str, payload: str) -> None:
        pause = RETRY_FIRST
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                if self._sender is None or self._sender.closed:
                    self._sender = self._connect()
                self._sender.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                if attempt > 1:
                    log.info("forwarded an event to other nodes", event_name=name, attempt=attempt)
                return
            except psycopg.Error as exc:
                log.warning(
                    "could not forward an event to other nodes; retrying on a new connection",
                    event_name=name,
                    attempt=attempt,
                    error=str(exc).strip(),
                )
                self._drop_sender()
                if attempt < SEND_ATTEMPTS:
                    time.sleep(pause)  # not self._stop.wait: a stopping node still sends
                    pause = min(pause * 2, RETRY_MAX)
        log.error(
            "gave up forwarding an event to other nodes; their gateways re-check the store",
            event_name=name,
        )

    def _connect(self) -> psycopg.Connection[Any]:
        # A connect gives up after 5 s, and TCP keepalives tell an idle listener whose peer
        # vanished without a word (a partition, a failover) in about 25 s, not never.
        return psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )

    def _drop_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            with contextlib.suppress(psycopg.Error):
                sender.close()

    # -- listening ------------------------------------------------------------------------

    def _listen(self) -> None:
        pause, connected_before = RETRY_FIRST, False
        while not self._stop.is_set():
            try:
                with self._connect() as listener:
                    listener.execute(f"LISTEN {CHANNEL}")
                    pause = RETRY_FIRST
                    if connected_before:  # what was notified while we were away is lost
                        log.info("event listener reconnected; catching up from the store")
                        self._bus.publish(Event(EVENTS_MISSED, datetime.now(UTC)))
                    connected_before = True
                    self._ready.set()
                    self._hear(listener)
            except psycopg.Error as exc:
                log.warning("event listener lost PostgreSQL; reconnecting", error=str(exc).strip())
                self._stop.wait(pause)
                pause = min(pause * 2, RETRY_MAX)

    def _hear(self, listener: psycopg.Connection[Any]) -> None:
        while not self._stop.is_set():
            for note in listener.notifies(timeout=0.5):
                self._receive(note.payload)

    def _receive(self, payload: str) -> None:
        try:
            origin, event = decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed event notification")
            return
        if origin != self.node:
            self._bus.publish(event)
