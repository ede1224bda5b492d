"""An issuer's public keys (its JWKS), fetched from its jwks_uri and kept a while.

Shared by everything that checks tokens signed elsewhere: the Shared Signals receiver (an
IdP's SETs) and OpenID Connect sign-in (ID tokens). A key id not seen yet fetches the keys
again (the issuer rotated), at most every 30 s, so a flood of tokens with made-up key ids
cannot turn sekisho into a flood of fetches.
"""

from __future__ import annotations

import threading

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from sekisho.clock import Clock
from sekisho.notify.base import get_json, safe_transport

KEYS_FRESH_S = 300.0  # a JWKS is used this long before it is fetched again
REFETCH_AFTER_S = 30.0  # an unknown kid fetches the JWKS again, at most this often
FETCH_TIMEOUT_S = 5.0


class KeysUnavailable(Exception):
    """The issuer's keys cannot be had now (unreachable, not https, not a JWKS); the text is
    safe to show."""


class NotASignedToken(Exception):
    """The text is not a compact JWS."""


class IssuerKeys:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._cached: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()

    def keys(self, uri: str, kid: str | None) -> KeySet:
        """The keys at `uri`, holding `kid` if the issuer has it; KeysUnavailable if they
        cannot be fetched."""
        with self._lock:
            now = self._clock.now().timestamp()
            cached = self._cached.get(uri)
            if cached and now - cached[0] < KEYS_FRESH_S and _knows(cached[1], kid):
                return cached[1]
            if cached and now - cached[0] < REFETCH_AFTER_S:
                return cached[1]
            keys = _fetch(uri)
            self._cached[uri] = (now, keys)
            return keys


def _knows(keys: KeySet, kid: str | None) -> bool:
    return kid is None or any(k.kid == kid for k in keys.keys)


def _fetch(uri: str) -> KeySet:
    if not safe_transport(uri):
        raise KeysUnavailable("the issuer's jwks_uri must be https")
    try:
        return KeySet.import_key_set(get_json(uri, FETCH_TIMEOUT_S))
    except (httpx.HTTPError, ValueError, TypeError, JoseError):
        raise KeysUnavailable("the issuer's keys cannot be fetched now; try again") from None


def kid_of(token: str) -> str | None:
    """The `kid` in a compact JWS's header, to pick (or fetch) the key; checked by decoding."""
    try:
        header = extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError):
        raise NotASignedToken("not a signed JWT") from None
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None
