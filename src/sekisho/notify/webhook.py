"""The generic webhook: a JSON POST, signed so the receiver can tell it came from sekisho.

Every request carries

    X-Sekisho-Timestamp: 1796026440                  (Unix seconds when it was sent)
    X-Sekisho-Signature: v1=<hex HMAC-SHA256(key, "<timestamp>." + body)>
    X-Sekisho-Delivery:  <idempotency key>           (the same on every retry)
    X-Sekisho-Event:     request.decided

A receiver recomputes the signature over the raw body with the shared key (compared in
constant time), refuses a timestamp more than five minutes from its own clock (a replay of an
old request), and keeps the delivery keys it has seen for longer than sekisho retries (a day):
a key seen before is answered 2xx and not acted on again. `verify` does the first two.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from sekisho.notify.base import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    Delivery,
    DeliveryFailed,
    HttpPoster,
)
from sekisho.notify.render import webhook_body

TIMESTAMP_HEADER = "X-Sekisho-Timestamp"
SIGNATURE_HEADER = "X-Sekisho-Signature"
SCHEME = "v1"
TOLERANCE_S = 300  # how far a receiver accepts a timestamp from its own clock


class InvalidSignature(Exception):
    pass


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def verify(
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> str:
    """Check a received webhook; return its delivery key, or raise InvalidSignature.

    `headers` must look names up case-insensitively (as HTTP frameworks' header maps do).
    """
    stamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    if not stamp.isdigit():
        raise InvalidSignature("no timestamp")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        raise InvalidSignature("timestamp outside the tolerance (a replay, or a wrong clock)")
    expected = sign(key, int(stamp), body)
    # Several signatures may be sent while keys rotate: "v1=abc,v1=def".
    if not any(hmac.compare_digest(expected, s.strip()) for s in given.split(",")):
        raise InvalidSignature("signature mismatch")
    delivery = headers.get(DELIVERY_HEADER, "")
    if not delivery:
        raise InvalidSignature("no delivery key")
    return delivery


class WebhookSender(HttpPoster):
    def __init__(
        self,
        url: str,
        key: bytes,
        *,
        timeout: float,
        ca_file: str | None = None,
        secret_url: bool = False,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(url, timeout=timeout, ca_file=ca_file, secret_url=secret_url)
        self._key = key
        self._wall = wall

    def send(self, delivery: Delivery) -> str:
        body = webhook_body(delivery.message, delivery.key)
        stamp = int(self._wall())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(self._key, stamp, body),
            DELIVERY_HEADER: delivery.key,
            EVENT_HEADER: delivery.event,
        }
        response = self.post(body, headers)
        if not response.is_success:
            raise DeliveryFailed(f"HTTP {response.status_code} {response.reason_phrase}")
        return f"HTTP {response.status_code}"
