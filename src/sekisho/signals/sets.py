"""Security Event Tokens (RFC 8417) as SSF 1.0 shapes them: one event, a `sub_id` subject
(RFC 9493), explicit typing (`typ: secevent+jwt`), signed with ES256."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

SET_TYPE = "secevent+jwt"
MEDIA_TYPE = "application/secevent+jwt"
PUSH_METHOD = "urn:ietf:rfc:8935"  # push delivery; the only method sekisho transmits with
SPEC_VERSION = "1_0"
SIGNING_ALG = "ES256"
# What sekisho accepts on the SETs it receives (asymmetric only: a shared secret would let a
# receiver forge the transmitter's events).
ACCEPTED_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
CREDENTIAL_CHANGE = CAEP + "credential-change"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
EVENTS_SUPPORTED = (SESSION_REVOKED,)  # transmitted; verification events always are

# CAEP's initiating_entity: who caused the event.
ADMIN, USER, POLICY, SYSTEM = "admin", "user", "policy", "system"


def user_subject(name: str, email: str | None) -> dict[str, str]:
    """The user as a receiver knows them: their e-mail (RFC 9493 `email`), else sekisho's
    name for them (`opaque`)."""
    if email:
        return {"format": "email", "email": email}
    return {"format": "opaque", "id": name}


def session_revoked(at: datetime, reason: str, initiator: str) -> dict[str, Any]:
    """CAEP session-revoked: every session of the subject ended at `at`."""
    return {
        "event_timestamp": int(at.timestamp()),
        "initiating_entity": initiator,
        "reason_admin": {"en": reason},
    }


def claims(
    *,
    issuer: str,
    audience: str,
    jti: str,
    issued_at: int,
    event_type: str,
    event: dict[str, Any],
    subject: dict[str, Any],
) -> dict[str, Any]:
    """A SET's claims: no `sub` and no `exp` (SSF 1.0 §4.1), the subject in `sub_id`."""
    return {
        "iss": issuer,
        "aud": audience,
        "jti": jti,
        "iat": issued_at,
        "sub_id": subject,
        "events": {event_type: event},
    }


def sign(key: ECKey, set_claims: dict[str, Any]) -> str:
    header = {"alg": SIGNING_ALG, "typ": SET_TYPE, "kid": key.kid}
    return jwt.encode(header, set_claims, key)
