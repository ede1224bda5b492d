"""The 64 KiB body limit holds however the body is sent: counted as it is read, over a real
socket, chunked or not. A body over the limit is answered 413 (a problem) before the client
has finished sending, and the connection is closed: the server never buffers it."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from sekisho.api.app import MAX_BODY
from sekisho.bootstrap import Core
from sekisho.server import build_app
from support import People, serving

CHUNK = 16 * 1024


@pytest.fixture
def address(core: Core) -> Iterator[tuple[str, int]]:
    with serving(build_app(core, scheduler=False)) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"the connection closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        body += sock.recv(4096)
    return status, headers, body


def send_chunked_head(sock: socket.socket, path: str, headers: dict[str, str]) -> None:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


def send_chunks(sock: socket.socket, count: int) -> None:
    piece = b"x" * CHUNK
    for _ in range(count):
        sock.sendall(b"%x\r\n" % CHUNK + piece + b"\r\n")


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed its end (a read returns EOF or the reset)."""
    sock.settimeout(10)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    return True


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v1/requests", {"Content-Type": "application/json"}),
        ("/api/v1/auth/login", {"Content-Type": "application/json"}),
        ("/signin", {"Content-Type": "application/x-www-form-urlencoded"}),
    ],
)
def test_a_chunked_body_over_the_limit_is_refused_while_it_is_still_being_sent(
    address: tuple[str, int], people: People, path: str, headers: dict[str, str]
) -> None:
    with socket.create_connection(address, timeout=15) as sock:
        send_chunked_head(sock, path, {**headers, **people.headers("member01")})
        send_chunks(sock, MAX_BODY // CHUNK + 2)  # past the limit, and never the last chunk
        # The client is still sending (no terminating chunk): a server that waits for the
        # whole body never answers, and this read times out.
        status, answer_headers, body = read_response(sock)
        assert status == 413
        assert answer_headers.get("connection") == "close"
        if path.startswith("/api/"):
            assert answer_headers["content-type"].startswith("application/problem+json")
            problem = json.loads(body)
            assert problem["code"] == "too-large"
            assert str(MAX_BODY) in problem["detail"]
        assert closed_by_server(sock)


def test_the_connection_is_cut_while_a_huge_chunked_body_streams_in(
    address: tuple[str, int], people: People
) -> None:
    """A client streaming 256 MiB gets its answer and a closed connection long before."""
    sock = socket.create_connection(address, timeout=15)
    sent = {"bytes": 0, "error": None}

    def stream() -> None:
        piece = b"%x\r\n" % CHUNK + b"y" * CHUNK + b"\r\n"
        try:
            while sent["bytes"] < 256 << 20:
                sock.sendall(piece)
                sent["bytes"] += CHUNK  # type: ignore[operator]
        except OSError as exc:
            sent["error"] = exc

    send_chunked_head(sock, "/api/v1/requests", {"Content-Type": "application/json"})
    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    try:
        status, _headers, _body = read_response(sock)
        assert status == 413
        sender.join(timeout=30)
        assert not sender.is_alive()
        assert sent["error"] is not None  # the server hung up on the stream ...
        assert sent["bytes"] < 64 << 20  # ... long before the 256 MiB were through
    finally:
        sock.close()


def test_a_body_under_the_limit_still_works_chunked(
    address: tuple[str, int], people: People
) -> None:
    body = json.dumps({"user": "member01", "verb": "connect", "object": "x"}).encode()
    with socket.create_connection(address, timeout=15) as sock:
        send_chunked_head(
            sock,
            "/api/v1/decisions",
            {"Content-Type": "application/json", **people.headers("member01")},
        )
        sock.sendall(b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        status, _headers, answer = read_response(sock)
    assert status == 200, answer
    assert json.loads(answer)["allowed"] is False


@pytest.fixture
def people(core: Core) -> People:
    return People(core)
