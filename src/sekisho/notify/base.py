"""The small interface every channel implements, and what they share.

A sender turns one delivery into one message on its channel and returns what the channel
answered (its receipt), or raises `DeliveryFailed`. It never reports success before the
channel confirmed (HTTP 2xx, SMTP 250 after DATA, an SNS MessageId). Its error texts are
stored and logged, so they never carry a secret (keys, passwords, secret URLs) nor the body.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import certifi
import httpx

from sekisho.domain.hosts import is_loopback
from sekisho.notify.message import Message

USER_AGENT = "sekisho-notify/1"
# Carried by every channel that has headers or attributes: receivers dedupe on it.
DELIVERY_HEADER = "X-Sekisho-Delivery"
EVENT_HEADER = "X-Sekisho-Event"


@dataclass(frozen=True)
class Delivery:
    key: str  # the idempotency key: the same on every attempt of this message
    event: str
    message: Message
    recipient: str | None = None  # a personal e-mail channel: the address


class DeliveryFailed(Exception):
    """The channel did not confirm. The text is safe to store and to log."""


class Sender(Protocol):
    def send(self, delivery: Delivery) -> str:
        """Deliver; return the channel's receipt. Raise DeliveryFailed if not confirmed."""
        ...

    def close(self) -> None: ...


def from_env(environ: Mapping[str, str], name: str | None, what: str) -> str:
    """The secret in environment variable `name`; never its value in the error."""
    value = environ.get(name or "", "")
    if not name or not value:
        raise DeliveryFailed(f"environment variable {name} ({what}) is not set")
    return value


def redact(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verify the peer against the usual public CAs (certifi's, as httpx), or only against
    `ca_file`. Built once per file (and its modification time): loading CAs takes ~25 ms."""
    try:
        stamp = os.stat(ca_file).st_mtime_ns if ca_file else 0
        return _context(ca_file, stamp)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryFailed(f"cannot read ca_file {ca_file}: {exc}") from None


@functools.lru_cache(maxsize=16)
def _context(ca_file: str | None, _stamp: int) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file or certifi.where())


def get_json(url: str, timeout: float) -> Any:
    """GET a JSON document from another system (an IdP's discovery document, a JWKS): TLS
    verified, no redirect followed. httpx.HTTPError or ValueError when it cannot be had."""
    response = httpx.get(
        url,
        timeout=timeout,
        verify=tls_context(None),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
    )
    response.raise_for_status()
    return response.json()


def parses_as_url(url: str) -> bool:
    """Whether `url` is a URL both httpx (which sends to it) and urllib (botocore's) can read,
    with a host and a port in range. Their errors are not kept: they quote the URL."""
    try:
        httpx.URL(url)
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except (httpx.InvalidURL, ValueError):  # UnicodeError is a ValueError
        return False
    return bool(parts.hostname)


def safe_transport(url: str) -> bool:
    """The transport rule for every URL sekisho sends to or fetches keys from: https, or
    http only to a loopback address (a test, a sidecar on the same host)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return True
    return parts.scheme == "http" and is_loopback(host)


class HttpPoster:
    """What the HTTP channels share: one keep-alive client that verifies TLS and never
    follows a redirect, and errors that never show a secret URL (its path or query)."""

    def __init__(
        self, url: str, *, timeout: float, ca_file: str | None = None, secret_url: bool = True
    ) -> None:
        self._url = url
        self._secrets = url_secrets(url) if secret_url else []
        self._client = httpx.Client(
            timeout=timeout,
            verify=tls_context(ca_file),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    def post(self, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        try:
            return self._client.post(self._url, content=body, headers=dict(headers))
        except httpx.TimeoutException:
            raise DeliveryFailed("timed out") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(redact(f"{type(exc).__name__}: {exc}", self._secrets)) from None
        except (httpx.InvalidURL, ValueError):  # not HTTPErrors; their text may quote the URL
            raise DeliveryFailed("the channel's URL is not a valid URL") from None

    def close(self) -> None:
        self._client.close()


def url_secrets(url: str) -> list[str | None]:
    """The parts of a secret URL an error must not show: all of it, its path and query (the
    token), its user part. A URL that does not even split is refused when it is sent."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    return [url, parts.path, parts.query, parts.username, parts.password]
