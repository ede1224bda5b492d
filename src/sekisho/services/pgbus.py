"""Events between nodes sharing PostgreSQL: LISTEN/NOTIFY carries the in-process bus across.

A revocation on node A must cut a gateway session on node B at once. Each node forwards its
own events with NOTIFY and republishes the other nodes' events on its local bus. An event a
node received from another is never sent on again, so nothing loops.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

import psycopg
import structlog
from sqlalchemy.engine import make_url

from sekisho.services.events import Event, EventBus
from sekisho.services.lease import node_id

log = structlog.get_logger(__name__)

CHANNEL = "sekisho_events"
ORIGIN = "origin"  # set on events that came from another node
# What other nodes need to hear: access changes (gateways cut sessions) and work to do.
CARRIED = frozenset(
    {
        "grant.ended",
        "grant.activated",
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
        self._send_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Any = None

    def start(self) -> None:
        self._sender = psycopg.connect(self._url, autocommit=True)
        self._thread = threading.Thread(target=self._listen, name="pg-events", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("could not LISTEN for sekisho events on PostgreSQL")
        self._unsubscribe = self._bus.subscribe(self._forward)

    def stop(self) -> None:
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sender is not None:
            self._sender.close()

    def _forward(self, event: Event) -> None:
        if event.name not in CARRIED or ORIGIN in event.data:
            return  # not for other nodes, or it came from one
        payload = encode(event, self.node)
        with self._send_lock:
            try:
                assert self._sender is not None
                self._sender.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            except psycopg.Error:
                log.exception("could not forward an event to other nodes", event_name=event.name)
                self._reconnect_sender()

    def _reconnect_sender(self) -> None:
        try:
            if self._sender is not None:
                self._sender.close()
            self._sender = psycopg.connect(self._url, autocommit=True)
        except psycopg.Error:
            log.exception("PostgreSQL unreachable for events")

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as listener:
                    listener.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    while not self._stop.is_set():
                        for note in listener.notifies(timeout=0.5):
                            self._receive(note.payload)
            except psycopg.Error:
                log.exception("event listener lost PostgreSQL; reconnecting")
                self._stop.wait(1)

    def _receive(self, payload: str) -> None:
        try:
            origin, event = decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed event notification")
            return
        if origin != self.node:
            self._bus.publish(event)
