"""Helpers for the sign-in tests: a real server, clients from chosen addresses, bursts of calls."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import httpx

from sekisho.bootstrap import Core
from sekisho.server import create_app
from support import serving

T = TypeVar("T")
LOGIN = "/api/v1/auth/login"
# Generous: a call that stalls behind a flood must fail the test, not hang it.
TIMEOUT = 30.0


@contextmanager
def served(core: Core) -> Iterator[str]:
    """The API on a real uvicorn over a real socket, as `sekisho serve` runs it."""
    with serving(create_app(core)) as url:
        yield url


def client(url: str, address: str = "127.0.0.1") -> httpx.Client:
    """A client whose connections come from `address` (any of 127.0.0.0/8 on Linux).

    The server takes the caller's address from the socket, so this is who it sees.
    """
    transport = httpx.HTTPTransport(local_address=address)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    return httpx.Client(base_url=url, transport=transport, timeout=TIMEOUT, limits=limits)


def at_once(count: int, call: Callable[[int], T]) -> list[T]:
    """`call(i)` for i in range(count), on `count` threads released together."""
    start = threading.Barrier(count)

    def one(i: int) -> T:
        start.wait()
        return call(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def login_body(user: str, password: str, otp: str) -> dict[str, str]:
    return {"user": user, "password": password, "otp": otp}
