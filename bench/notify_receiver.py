"""A webhook receiver for the notification benchmark, in its own process.

`python -m bench.notify_receiver --port P --key-env VAR`: POSTs are verified as a real
receiver must (HMAC signature, timestamp) and kept by delivery key (a key seen before is
answered 200 and counted as a duplicate); GET /stats answers the counts as JSON. HTTP/1.1
with keep-alive, one thread per connection.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sekisho.notify.webhook import InvalidSignature, verify


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key-env", required=True)
    args = parser.parse_args()
    key = os.environ[args.key_env].encode()
    seen: set[str] = set()
    counts = {"accepted": 0, "duplicates": 0, "rejected": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes: without this, Nagle's algorithm and
            # the client's delayed ACK add 40 ms to every answer.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                delivery = verify(key, self.headers, raw)
            except InvalidSignature:
                with lock:
                    counts["rejected"] += 1
                self._answer(401, b"bad signature")
                return
            with lock:
                if delivery in seen:
                    counts["duplicates"] += 1
                else:
                    seen.add(delivery)
                    counts["accepted"] += 1
            self._answer(200, b"ok")

        def do_GET(self) -> None:
            with lock:
                body = json.dumps(counts).encode()
            self._answer(200, body)

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
