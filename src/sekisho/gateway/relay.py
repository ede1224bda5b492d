"""The byte relay between a TLS socket and a plain one: one thread owns both.

OpenSSL objects must not be driven from two threads at once (reading in one while writing in
the other corrupts the TLS state), so a single thread moves both directions, with
non-blocking sockets and a selector. Each direction holds at most one buffer of data: a slow
reader stops the relay from reading more on the other side (back-pressure), so memory per
connection is bounded by two buffers whatever the peers do.

Half-close: a plain socket's write side is shut down when its peer finished sending; the TLS
side cannot be half-closed with Python's ssl module, so an end of data from the plain side
ends the whole connection.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

BUFFER = 256 * 1024
IDLE_POLL = 30.0  # the relay re-checks its cut flag at least this often


@dataclass
class Meter:
    """Bytes moved and the last moment anything moved. Written by one relay thread each."""

    up: int = 0  # plain -> TLS for the client, TLS -> plain at the gateway: toward the target
    down: int = 0
    last_activity: float = field(default_factory=time.monotonic)


class Cut:
    """Ends a relay from another thread, without touching its TLS object."""

    def __init__(self) -> None:
        self._reason: str | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    @property
    def reason(self) -> str | None:
        return self._reason

    def attach(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.extend(sockets)
            cut = self._reason is not None
        if cut:
            self._shutdown(sockets)

    def __call__(self, reason: str) -> None:
        with self._lock:
            if self._reason is not None:
                return
            self._reason = reason
            sockets = list(self._sockets)
        self._shutdown(sockets)

    @staticmethod
    def _shutdown(sockets: list[socket.socket] | tuple[socket.socket, ...]) -> None:
        for sock in sockets:
            # The plain socket method, even on an SSLSocket: a raw shutdown wakes the relay's
            # select and ends its reads, while the relay thread alone touches the SSL object.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


def relay(tls: ssl.SSLSocket, plain: socket.socket, meter: Meter, up_is_plain: bool) -> None:
    """Move bytes both ways until either side is done (or a Cut shuts the sockets).

    `up_is_plain`: bytes read from the plain socket count as `meter.up` (the client side);
    otherwise bytes read from the TLS socket do (the gateway side, where TLS faces the user).
    """
    tls.setblocking(False)
    plain.setblocking(False)
    sel = selectors.DefaultSelector()
    from_tls, from_plain = bytearray(BUFFER), bytearray(BUFFER)
    tls_view, plain_view = memoryview(from_tls), memoryview(from_plain)
    to_plain: memoryview | None = None  # read from TLS, not yet written to plain
    to_tls: memoryview | None = None
    tls_done = plain_done = False
    sel.register(tls, selectors.EVENT_READ)
    sel.register(plain, selectors.EVENT_READ)
    try:
        while True:
            moved = True
            while moved:
                moved = False
                if to_plain is None and not tls_done:
                    filled, tls_done = _read_tls(tls, tls_view)
                    if filled:
                        to_plain, moved = tls_view[:filled], True
                        _count(meter, filled, from_plain_side=False, up_is_plain=up_is_plain)
                if to_plain is not None:
                    to_plain, sent = _write(plain, to_plain)
                    moved = moved or sent > 0
                if to_tls is None and not plain_done:
                    filled, plain_done = _read_plain(plain, plain_view)
                    if filled:
                        to_tls, moved = plain_view[:filled], True
                        _count(meter, filled, from_plain_side=True, up_is_plain=up_is_plain)
                if to_tls is not None:
                    to_tls, sent = _write_tls(tls, to_tls)
                    moved = moved or sent > 0
            if plain_done and to_tls is None:
                return  # the plain side finished: TLS cannot be half-closed, so we end
            if tls_done and to_plain is None:
                return
            sel.modify(plain, _events(to_tls is None and not plain_done, to_plain is not None))
            sel.modify(tls, _events(to_plain is None and not tls_done, to_tls is not None))
            if not sel.select(IDLE_POLL):
                continue
    except OSError:
        return  # reset by a peer, or shut down by a Cut
    finally:
        sel.close()


def _events(read: bool, write: bool) -> int:
    events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
    return events or selectors.EVENT_READ  # always watch for a reset or a Cut


def _count(meter: Meter, n: int, *, from_plain_side: bool, up_is_plain: bool) -> None:
    if from_plain_side == up_is_plain:
        meter.up += n
    else:
        meter.down += n
    meter.last_activity = time.monotonic()


def _read_tls(tls: ssl.SSLSocket, view: memoryview) -> tuple[int, bool]:
    """Read as many TLS records as fit; (bytes read, peer finished)."""
    filled = 0
    try:
        while filled < len(view):
            n = tls.recv_into(view[filled:])
            if n == 0:
                return filled, True
            filled += n
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        pass
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        return filled, True
    return filled, False


def _read_plain(plain: socket.socket, view: memoryview) -> tuple[int, bool]:
    try:
        n = plain.recv_into(view)
    except BlockingIOError:
        return 0, False
    return n, n == 0


def _write(plain: socket.socket, data: memoryview) -> tuple[memoryview | None, int]:
    try:
        n = plain.send(data)
    except BlockingIOError:
        return data, 0
    return (data[n:] if n < len(data) else None), n


def _write_tls(tls: ssl.SSLSocket, data: memoryview) -> tuple[memoryview | None, int]:
    try:
        n = tls.send(data)
    except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
        return data, 0
    return (data[n:] if n < len(data) else None), n
