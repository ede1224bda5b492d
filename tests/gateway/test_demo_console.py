"""The demo's production console: HTTPS only, with a certificate from the sekisho CA.

Real sockets on 127.0.0.1. The console listens once `start()` returns, so no test waits.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from sekisho import demo_console
from sekisho.demo_console import HOSTNAME, TITLE, DemoConsole
from sekisho.gateway.pki import ca_pem, client_context, ensure_ca


@pytest.fixture
def console(tmp_path: Path) -> Iterator[DemoConsole]:
    with DemoConsole(tmp_path, port=0) as running:
        yield running


@pytest.fixture
def trusted(tmp_path: Path, console: DemoConsole) -> ssl.SSLContext:
    return client_context(ca_pem(tmp_path))


def request(
    port: int,
    context: ssl.SSLContext,
    path: str = "/",
    server_hostname: str = HOSTNAME,
    headers: dict[str, str] | None = None,
) -> tuple[http.client.HTTPResponse, bytes, ssl.SSLSocket]:
    """GET over TLS to 127.0.0.1 with the given SNI, as a browser behind `sekisho forward`."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    tls = context.wrap_socket(raw, server_hostname=server_hostname)
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOSTNAME}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    response = http.client.HTTPResponse(tls)  # type: ignore[arg-type]
    response.begin()
    body = response.read()
    tls.close()
    return response, body, tls


def test_the_console_answers_over_verified_tls(
    console: DemoConsole, trusted: ssl.SSLContext
) -> None:
    raw = socket.create_connection(("127.0.0.1", console.port), timeout=5)
    with trusted.wrap_socket(raw, server_hostname=HOSTNAME) as tls:
        assert tls.version() == "TLSv1.3"
        peer = tls.getpeercert()
        assert ("DNS", HOSTNAME) in peer["subjectAltName"]
    response, body, _ = request(console.port, trusted)
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    page = body.decode()
    assert f"<title>{TITLE}</title>" in page
    assert f"{HOSTNAME}:{console.port}" in page  # the name it was reached by
    assert response.getheader("Cache-Control") == "no-store"
    assert response.getheader("Server") == "payment-admin"  # no Python version advertised


def test_the_page_shows_the_current_time(console: DemoConsole, trusted: ssl.SSLContext) -> None:
    _, body, _ = request(console.port, trusted)
    found = re.search(r"Live at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \(UTC\)", body.decode())
    assert found
    shown = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - shown) < timedelta(minutes=1)


def test_health_and_unknown_paths(console: DemoConsole, trusted: ssl.SSLContext) -> None:
    response, body, _ = request(console.port, trusted, "/health")
    assert (response.status, body) == (200, b"ok")
    response, _, _ = request(console.port, trusted, "/admin/../etc/passwd")
    assert response.status == 404


def test_localhost_and_loopback_names_verify_too(
    console: DemoConsole, trusted: ssl.SSLContext
) -> None:
    """What a browser uses when it opens the forwarded port on this machine."""
    for name in ("localhost", "127.0.0.1"):
        assert request(console.port, trusted, server_hostname=name)[0].status == 200


def test_a_client_with_another_ca_refuses_the_console(tmp_path: Path, console: DemoConsole) -> None:
    other = client_context(ensure_ca(tmp_path / "elsewhere").cert)
    with pytest.raises(ssl.SSLCertVerificationError):
        request(console.port, other)


def plain_get(port: int) -> int:
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        plain.request("GET", "/")
        return plain.getresponse().status
    finally:
        plain.close()


def test_plain_http_gets_no_page(console: DemoConsole, trusted: ssl.SSLContext) -> None:
    # The server drops the connection (RemoteDisconnected) or resets it: never an HTTP answer.
    with pytest.raises((http.client.HTTPException, OSError)):
        plain_get(console.port)
    # The failed handshake did not hurt the server.
    assert request(console.port, trusted)[0].status == 200


def test_a_silent_client_does_not_block_others(
    console: DemoConsole, trusted: ssl.SSLContext
) -> None:
    """Handshakes run per connection, not in the accept loop."""
    with socket.create_connection(("127.0.0.1", console.port), timeout=5):
        assert request(console.port, trusted)[0].status == 200


def test_keep_alive_serves_several_requests_on_one_connection(
    console: DemoConsole, trusted: ssl.SSLContext
) -> None:
    raw = socket.create_connection(("127.0.0.1", console.port), timeout=5)
    with trusted.wrap_socket(raw, server_hostname=HOSTNAME) as tls:
        reader = tls.makefile("rb")
        for _ in range(2):
            tls.sendall(f"GET /health HTTP/1.1\r\nHost: {HOSTNAME}\r\n\r\n".encode())
            assert reader.readline().startswith(b"HTTP/1.1 200")
            length = 0
            while (line := reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert reader.read(length) == b"ok"


def test_the_host_header_is_escaped(console: DemoConsole, trusted: ssl.SSLContext) -> None:
    raw = socket.create_connection(("127.0.0.1", console.port), timeout=5)
    with trusted.wrap_socket(raw, server_hostname=HOSTNAME) as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: <script>x</script>\r\nConnection: close\r\n\r\n")
        response = http.client.HTTPResponse(tls)  # type: ignore[arg-type]
        response.begin()
        page = response.read().decode()
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<script>" not in page


def test_nothing_sensitive_is_logged(
    console: DemoConsole, trusted: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def debug(self, event: str, **kw: Any) -> None:
            events.append((event, kw))

        info = debug

    monkeypatch.setattr(demo_console, "log", Recorder())
    request(
        console.port,
        trusted,
        "/?session=s3cr3t-query",
        headers={"Authorization": "Bearer s3cr3t-header", "Cookie": "sid=s3cr3t-cookie"},
    )
    assert events == [("demo_console.request", {"method": "GET", "path": "/", "status": 200})]
    assert "s3cr3t" not in repr(events)


def test_its_certificate_comes_from_the_sekisho_ca(tmp_path: Path, console: DemoConsole) -> None:
    pki = tmp_path / "pki"
    leaf = x509.load_pem_x509_certificate((pki / "demo-console.crt").read_bytes())
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes()))
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {HOSTNAME, "localhost"} <= set(san.get_values_for_type(x509.DNSName))
    assert stat.S_IMODE((pki / "demo-console.key").stat().st_mode) == 0o600


def test_url_and_port_are_the_real_ones(console: DemoConsole) -> None:
    assert console.port != 0
    assert console.url == f"https://127.0.0.1:{console.port}/"
    assert console.hostname == HOSTNAME


def test_stop_closes_the_port_and_a_second_start_is_refused(tmp_path: Path) -> None:
    running = DemoConsole(tmp_path, port=0)
    running.start()
    port = running.port
    with pytest.raises(RuntimeError, match="already running"):
        running.start()
    running.stop()
    running.stop()  # harmless
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_busy_port_is_a_clear_error(tmp_path: Path, console: DemoConsole) -> None:
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{console.port}"):
        DemoConsole(tmp_path, port=console.port).start()


def test_it_restarts_on_the_same_port_with_the_same_certificate(tmp_path: Path) -> None:
    with DemoConsole(tmp_path, port=0) as first:
        port = first.port
        cert = (tmp_path / "pki" / "demo-console.crt").read_bytes()
    with DemoConsole(tmp_path, port=port) as second:
        response, _, _ = request(second.port, client_context(ca_pem(tmp_path)))
        assert response.status == 200
    assert (tmp_path / "pki" / "demo-console.crt").read_bytes() == cert
