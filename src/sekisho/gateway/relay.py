"""The byte relay between a TLS socket and a plain one: one thread owns both.

OpenSSL objects must not be driven from two threads at once (reading in one while writing in
the other corrupts the TLS state), so a single thread moves both directions, with
non-blocking sockets and a selector. Each direction holds at most one buffer of data: a slow
reader stops the relay from reading more on the other side (back-pressure), so memory per
connection is bounded by two buffers whatever the peers do. The buffers are anonymous
mappings: an idle connection costs no memory for them, and closing returns it.

Half-close: a plain socket's write side is shut down when its peer finished sending; the TLS
side cannot be half-closed with Python's ssl module, so an end of data from the plain side
ends the whole connection.
"""

from __future__ import annotations

import contextlib
import mmap
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

BUFFER = 256 * 1024
IDLE_POLL = 30.0  # the relay re-checks its sockets at least this often


@dataclass
class Meter:
    """Bytes moved and the last moment anything moved. Written by one relay thread each."""

    up: int = 0  # toward the target
    down: int = 0  # toward the user
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


class _Direction:
    """One way through the relay: read from `source` into a buffer, write it to `sink`."""

    def __init__(self, source: socket.socket, sink: socket.socket, counts_up: bool) -> None:
        self.source, self.sink, self.counts_up = source, sink, counts_up
        self.buffer = mmap.mmap(-1, BUFFER)
        self.view = memoryview(self.buffer)
        self.pending: memoryview | None = None  # read, not yet written
        self.done = False  # the source has no more data

    def close(self) -> None:
        self.pending = None
        with contextlib.suppress(BufferError):  # a slice still alive: the GC frees it later
            self.view.release()
            self.buffer.close()


def relay(tls: ssl.SSLSocket, plain: socket.socket, meter: Meter, up_is_plain: bool) -> None:
    """Move bytes both ways until either side is done (or a Cut shuts the sockets).

    `up_is_plain`: bytes read from the plain socket count as `meter.up` (the client side);
    otherwise bytes read from the TLS socket do (the gateway side, where TLS faces the user).
    """
    tls.setblocking(False)
    plain.setblocking(False)
    to_plain = _Direction(tls, plain, counts_up=not up_is_plain)
    to_tls = _Direction(plain, tls, counts_up=up_is_plain)
    sel = selectors.DefaultSelector()
    sel.register(tls, selectors.EVENT_READ)
    sel.register(plain, selectors.EVENT_READ)
    readable = {tls, plain}  # try both once before the first wait
    writable: set[socket.socket] = set()
    try:
        while True:
            for way in (to_plain, to_tls):
                filled = False
                if way.pending is None and not way.done and way.source in readable:
                    filled = _fill(way, meter)
                if way.pending is not None and (filled or way.sink in writable):
                    _drain(way)  # right after a read too: a socket is usually writable
            # TLS may hold decrypted bytes that select cannot see: read them first.
            if to_plain.pending is None and not to_plain.done and tls.pending():
                readable = {tls}
                writable = set()
                continue
            if (to_tls.done and to_tls.pending is None) or (
                to_plain.done and to_plain.pending is None
            ):
                return
            sel.modify(plain, _events(to_tls, to_plain))
            sel.modify(tls, _events(to_plain, to_tls))
            ready = sel.select(IDLE_POLL)
            readable = {key.fileobj for key, ev in ready if ev & selectors.EVENT_READ}  # type: ignore[misc]
            writable = {key.fileobj for key, ev in ready if ev & selectors.EVENT_WRITE}  # type: ignore[misc]
    except OSError:
        return  # reset by a peer, or shut down by a Cut
    finally:
        sel.close()
        to_plain.close()
        to_tls.close()


def _events(reading: _Direction, writing: _Direction) -> int:
    """What to wait for on the socket that `reading` reads from and `writing` writes to."""
    events = selectors.EVENT_READ if reading.pending is None and not reading.done else 0
    if writing.pending is not None:
        events |= selectors.EVENT_WRITE
    return events or selectors.EVENT_READ  # always watch for a reset or a Cut


def _fill(way: _Direction, meter: Meter) -> bool:
    """Read what is there (up to a buffer) from the source; True if anything came."""
    filled = 0
    source = way.source
    try:
        if isinstance(source, ssl.SSLSocket):
            while filled < BUFFER:  # a TLS record at a time, until none is complete
                n = source.recv_into(way.view[filled:])
                if n == 0:
                    way.done = True
                    break
                filled += n
        else:
            n = source.recv_into(way.view)
            way.done, filled = n == 0, n
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        pass
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        way.done = True
    if not filled:
        return False
    way.pending = way.view[:filled]
    if way.counts_up:
        meter.up += filled
    else:
        meter.down += filled
    meter.last_activity = time.monotonic()
    return True


def _drain(way: _Direction) -> None:
    """Write as much of the pending data as the sink takes now."""
    assert way.pending is not None
    try:
        n = way.sink.send(way.pending)
    except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
        return
    way.pending = way.pending[n:] if n < len(way.pending) else None
