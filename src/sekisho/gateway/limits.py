"""Limits for the gateway: token buckets keyed by client and by user, and the slots for
connections not yet authenticated."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict


class RateLimiter:
    """`rate` events per second per key, with bursts up to `burst`. Memory is bounded."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1
            self._buckets[key] = (tokens - 1 if allowed else tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)  # forget the longest-quiet key
            return allowed


class PendingSlots:
    """Slots for connections not yet authenticated (TCP accepted, TLS and hello not done).

    A silent connection holds its slot until the hello timeout: without a cap per client, one
    address opening connections faster than they time out holds every slot, and nobody else
    gets in. So each client may hold `per_client` slots, and all clients `total`. Memory is
    bounded by `total`: a client's count exists only while it holds a slot.
    """

    def __init__(self, per_client: int, total: int) -> None:
        self.per_client, self.total = per_client, total
        self._held: dict[str, int] = {}
        self._in_use = 0
        self._lock = threading.Lock()

    def acquire(self, client: str) -> bool:
        with self._lock:
            held = self._held.get(client, 0)
            if held >= self.per_client or self._in_use >= self.total:
                return False
            self._held[client] = held + 1
            self._in_use += 1
            return True

    def release(self, client: str) -> None:
        with self._lock:
            held = self._held.pop(client)
            if held > 1:
                self._held[client] = held - 1
            self._in_use -= 1

    def in_use(self, client: str | None = None) -> int:
        with self._lock:
            return self._in_use if client is None else self._held.get(client, 0)


def client_key(host: str) -> str:
    """Whose connection this is, for the limits: an IPv4 address, or an IPv6 client's /64.

    One IPv6 host routinely holds a whole /64 (64 bits it may vary at will), so an address of
    its own per connection must not buy a fresh allowance. An IPv4-mapped address is the
    IPv4 address it carries.
    """
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
