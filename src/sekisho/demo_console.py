"""The demo's "production admin console": a tiny HTTPS site that sits behind the gateway.

It stands in for the seed's payment console behind a bastion and a private load balancer:
the demo model makes it a target reachable only through `sekisho forward`, and it serves its
own certificate for a private DNS-style name (admin.prod.internal) issued by the sekisho CA,
so the browser's TLS session runs end to end through the tunnel. Stdlib only.
"""

from __future__ import annotations

import html
import socket
import socketserver
import ssl
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from sekisho.gateway.pki import ensure_ca, issue_certificate, server_context

log = structlog.get_logger(__name__)

HOSTNAME = "admin.prod.internal"
CERT_NAME = "demo-console"
TITLE = "Payment admin console"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="10">
<title>{title}</title>
<style>
body{{margin:0;font:14px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1f2933}}
.prod{{background:#b42318;color:#fff;padding:6px 24px;font-weight:600;letter-spacing:.04em}}
header{{background:#102a43;color:#fff;padding:14px 24px;display:flex;justify-content:space-between}}
header h1{{margin:0;font-size:18px}} main{{padding:24px;max-width:960px}}
.cards{{display:flex;gap:16px;margin-bottom:24px}}
.card{{flex:1;background:#fff;border-radius:8px;padding:16px;box-shadow:0 1px 3px #0002}}
.card b{{display:block;font-size:22px}}
table{{width:100%;border-collapse:collapse;background:#fff;border-radius:8px;overflow:hidden}}
th,td{{padding:8px 12px;text-align:left;border-bottom:1px solid #e4e7eb}}
th{{background:#e4e7eb}} .ok{{color:#027a48}} .held{{color:#b54708}} .fail{{color:#b42318}}
footer{{padding:0 24px 24px;color:#52606d}} code{{background:#e4e7eb;padding:1px 4px}}
</style></head><body>
<div class="prod">PRODUCTION - every action here is audited</div>
<header><h1>{title}</h1><span>reached as <code>{host}</code></span></header>
<main>
<div class="cards">
<div class="card">Payments today<b>12,408</b></div>
<div class="card">Volume (JPY)<b>48,215,900</b></div>
<div class="card">Held for review<b>7</b></div>
</div>
<table><thead><tr><th>Payment</th><th>Merchant</th><th>Amount</th><th>Status</th></tr></thead>
<tbody>
<tr><td>pay_7Q2K91</td><td>Kyoto Tea House</td><td>&yen;3,200</td><td class="ok">settled</td></tr>
<tr><td>pay_7Q2K8Z</td><td>Hakone Ryokan</td><td>&yen;86,000</td><td class="held">held</td></tr>
<tr><td>pay_7Q2K8X</td><td>Osaka Books</td><td>&yen;1,540</td><td class="ok">settled</td></tr>
<tr><td>pay_7Q2K8T</td><td>Nara Bikes</td><td>&yen;212,000</td><td class="fail">declined</td></tr>
</tbody></table>
</main>
<footer>Live at {time} (UTC), refreshes every 10 s. When your access ends, this page stops.
</footer></body></html>
"""


def render_page(host: str, now: datetime) -> str:
    # The Host header is the client's to choose: escape it, and keep it short.
    return _PAGE.format(
        title=TITLE, host=html.escape(host[:200]), time=now.strftime("%Y-%m-%d %H:%M:%S")
    )


class _Handler(BaseHTTPRequestHandler):
    server_version = "payment-admin"
    protocol_version = "HTTP/1.1"  # keep-alive, as a browser expects
    timeout = 30  # a client that stalls (or never finishes its handshake) frees its thread

    def version_string(self) -> str:
        return self.server_version  # without the stdlib's Python version

    def setup(self) -> None:
        sock = self.request
        assert isinstance(sock, ssl.SSLSocket)
        sock.settimeout(self.timeout)
        # The handshake runs here, in this connection's thread, so a silent or plain-HTTP
        # client cannot stall the accept loop. A failure ends up in `_Server.handle_error`.
        sock.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, send_body: bool) -> None:
        path = urlsplit(self.path).path
        if path == "/health":
            status, body, kind = 200, b"ok", "text/plain; charset=utf-8"
        elif path == "/":
            page = render_page(self.headers.get("Host", ""), datetime.now(UTC))
            status, body, kind = 200, page.encode(), "text/html; charset=utf-8"
        else:
            status, body, kind = 404, b"not found", "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        # No caching: once access ends, the browser must not keep showing production data.
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if send_body:
            self.wfile.write(body)
        # Path only: query strings and headers (cookies, tokens) never reach the log.
        log.debug("demo_console.request", method=self.command, path=path, status=status)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the stdlib logs whole request lines to stderr; `_respond` logs what is safe


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext) -> None:
        self.context = context
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can hang offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        wrapped = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed handshakes (plain HTTP, an untrusted CA, scanners) and dropped connections
        # are routine here; a traceback on stderr for each would bury the demo's output.
        log.debug("demo_console.connection_failed", error=type(sys.exc_info()[1]).__name__)


class DemoConsole:
    """The console in a background thread. Listening as soon as `start()` returns."""

    hostname = HOSTNAME

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = 8643) -> None:
        self._data_dir = data_dir
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the demo console is already running")
        ca = ensure_ca(self._data_dir)
        leaf = issue_certificate(
            ca, CERT_NAME, [HOSTNAME, "localhost"], ["127.0.0.1", "::1"], self._data_dir
        )
        context = server_context(leaf)
        context.set_alpn_protocols(["http/1.1"])
        try:
            server = _Server((self._host, self._port), context)  # binds and listens
        except OSError as exc:
            raise OSError(
                exc.errno, f"demo console cannot listen on {self._host}:{self._port}: {exc}"
            ) from exc
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="demo-console"
        )
        thread.daemon = True
        thread.start()
        self._server, self._thread = server, thread
        log.info("demo_console.started", url=self.url, hostname=HOSTNAME)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()  # returns once serve_forever has stopped
        server.server_close()
        thread.join()
        log.info("demo_console.stopped")

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The port it listens on (the real one once started, even if asked for port 0)."""
        return self._server.server_port if self._server else self._port

    @property
    def url(self) -> str:
        """Where the console answers directly; its certificate covers 127.0.0.1 and localhost.

        For the demo model's target use `host`/`port`; users reach it via `sekisho forward`.
        """
        host = self._host
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard is reached on loopback
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}/"

    def __enter__(self) -> DemoConsole:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
