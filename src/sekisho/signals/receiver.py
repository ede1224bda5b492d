"""Reading a SET pushed to sekisho: signature (the issuer's JWKS), explicit type, issuer,
audience, age, one event, a subject. Each refusal is the RFC 8935 error code it gets."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    InvalidKeyIdError,
    JoseError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from sekisho.clock import Clock
from sekisho.notify.base import USER_AGENT, safe_transport, tls_context
from sekisho.signals.sets import ACCEPTED_ALGS, SET_TYPE

MAX_SET_BYTES = 64 * 1024
MAX_AGE = timedelta(days=1)  # older SETs are refused (the replay table keeps a day of jtis)
CLOCK_SKEW = timedelta(minutes=5)
KEYS_FRESH_S = 300.0  # a JWKS is used this long before it is fetched again
REFETCH_AFTER_S = 30.0  # an unknown kid fetches the JWKS again, at most this often
MAX_JTI = 256


class SetRejected(Exception):
    """A SET sekisho will not act on: `err` is its RFC 8935 code; the text is safe to show."""

    def __init__(self, err: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.err, self.description, self.status = err, description, status


@dataclass(frozen=True)
class ReceivedSet:
    issuer: str
    jti: str
    issued_at: datetime
    event_type: str
    event: dict[str, Any]
    subject: dict[str, Any]


def read_set(token: str, keys: KeySet, *, issuer: str, audience: str, now: datetime) -> ReceivedSet:
    """The SET's content once every check passed; SetRejected naming the first that failed."""
    header, found = _verified(token, keys)
    if header.get("typ") != SET_TYPE:
        raise SetRejected("invalid_request", f"the JWT's typ must be {SET_TYPE}")
    if found.get("iss") != issuer:
        raise SetRejected("invalid_issuer", "the SET's iss is not the issuer sekisho trusts")
    if audience not in _audiences(found.get("aud")):
        raise SetRejected("invalid_audience", "the SET's aud does not name this sekisho")
    issued_at = _issued_at(found.get("iat"), now)
    jti = found.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
        raise SetRejected("invalid_request", f"the SET needs a jti of 1 to {MAX_JTI} characters")
    event_type, event = _one_event(found.get("events"))
    subject = found.get("sub_id")
    if not isinstance(subject, dict) or not isinstance(subject.get("format"), str):
        raise SetRejected("invalid_request", "the SET needs a sub_id subject (RFC 9493)")
    return ReceivedSet(issuer, jti, issued_at, event_type, event, subject)


def _verified(token: str, keys: KeySet) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        decoded = jwt.decode(token, keys, algorithms=ACCEPTED_ALGS)
    except (InvalidKeyIdError, BadSignatureError):
        raise SetRejected("invalid_key", "the SET is not signed by a key of the issuer") from None
    except UnsupportedAlgorithmError:
        raise SetRejected("invalid_key", "the SET's algorithm is not accepted") from None
    except (JoseError, ValueError, TypeError):
        raise SetRejected("invalid_request", "the body is not a signed JWT") from None
    return dict(decoded.header), dict(decoded.claims)


def _audiences(aud: object) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def _issued_at(iat: object, now: datetime) -> datetime:
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise SetRejected("invalid_request", "the SET needs an iat (seconds since the epoch)")
    try:
        at = datetime.fromtimestamp(iat, now.tzinfo)
    except (OverflowError, OSError, ValueError):
        raise SetRejected("invalid_request", "the SET's iat is not a time") from None
    if at > now + CLOCK_SKEW:
        raise SetRejected("invalid_request", "the SET's iat is in the future")
    if at < now - MAX_AGE:
        raise SetRejected("invalid_request", "the SET is more than a day old")
    return at


def _one_event(events: object) -> tuple[str, dict[str, Any]]:
    if not isinstance(events, dict) or len(events) != 1:
        raise SetRejected("invalid_request", "a SET holds exactly one event (SSF 1.0)")
    ((event_type, event),) = events.items()
    if not isinstance(event, dict):
        raise SetRejected("invalid_request", "the event's payload must be an object")
    return str(event_type), event


class IssuerKeys:
    """The transmitter's public keys, fetched from its jwks_uri and kept a while; a key id
    not seen yet fetches them again (the issuer rotated), at most every 30 s."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._cached: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()

    def keys(self, uri: str, kid: str | None) -> KeySet:
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
        raise SetRejected("invalid_key", "the issuer's jwks_uri must be https", status=503)
    try:
        response = httpx.get(
            uri,
            timeout=5.0,
            verify=tls_context(None),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        response.raise_for_status()
        return KeySet.import_key_set(response.json())
    except (httpx.HTTPError, ValueError, TypeError, JoseError):
        raise SetRejected(
            "invalid_key", "the issuer's keys cannot be fetched now; try again", status=503
        ) from None


def kid_of(token: str) -> str | None:
    """The `kid` in a compact JWS's header, to pick (or fetch) the key; checked by decoding."""
    try:
        header = extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError):
        raise SetRejected("invalid_request", "the body is not a signed JWT") from None
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None
