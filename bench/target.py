"""The target behind every path of the gateway benchmark, run as a child process.

`python -m bench.target --port-file PATH` listens on 127.0.0.1 (a free port, written to
PATH) and serves each connection in its own thread. The first byte decides what it is:
- `S` then a header `!QI` (bytes to send, 0 = until the peer goes away; microseconds to pause
  after each 64 KiB, 0 = full speed): a source, as a big download or a live stream;
- anything else: an echo of that byte and of everything after it (connect + first byte, and
  the idle tunnels, which send one byte and then wait).
A connection that closes before its first byte (the gateway's reachability check) is dropped.
"""

from __future__ import annotations

import argparse
import socket
import struct
import threading
import time
from pathlib import Path

SOURCE = b"S"
HEADER = struct.Struct("!QI")
CHUNK = 1024 * 1024  # full-speed source writes
PACED_CHUNK = 64 * 1024


def source_request(total: int, pause_us: int = 0) -> bytes:
    """What a client sends to get `total` bytes (0: a stream until it goes away)."""
    return SOURCE + HEADER.pack(total, pause_us)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed inside the header")
        data += chunk
    return bytes(data)


def _source(conn: socket.socket, total: int, pause_us: int) -> None:
    payload = memoryview(b"\xa5" * CHUNK)
    if pause_us:
        paced = payload[:PACED_CHUNK]
        sent = 0
        while not total or sent < total:
            conn.sendall(paced)
            sent += PACED_CHUNK
            time.sleep(pause_us / 1e6)
        return
    if not total:
        while True:
            conn.sendall(payload)
    left = total
    while left:
        n = min(left, CHUNK)
        conn.sendall(payload[:n])
        left -= n
    while conn.recv(65536):  # the client closes once it has everything
        pass


def _echo(conn: socket.socket, first: bytes) -> None:
    conn.sendall(first)
    while data := conn.recv(65536):
        conn.sendall(data)


def _serve(conn: socket.socket) -> None:
    try:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        first = conn.recv(1)
        if not first:
            return
        if first == SOURCE:
            total, pause_us = HEADER.unpack(_recv_exact(conn, HEADER.size))
            _source(conn, total, pause_us)
        else:
            _echo(conn, first)
    except OSError:
        pass
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.target")
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args()
    threading.stack_size(256 * 1024)
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    tmp = args.port_file.with_suffix(".tmp")
    tmp.write_text(str(listener.getsockname()[1]))
    tmp.replace(args.port_file)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
