"""Reading a SET pushed to sekisho: signature (the issuer's JWKS), explicit type, issuer,
audience, age, one event, a subject. Each refusal is the RFC 8935 error code it gets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    InvalidKeyIdError,
    JoseError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet

from sekisho.signals.sets import ACCEPTED_ALGS, SET_TYPE

MAX_SET_BYTES = 64 * 1024
MAX_AGE = timedelta(days=1)  # older SETs are refused (the replay table keeps a day of jtis)
CLOCK_SKEW = timedelta(minutes=5)
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
