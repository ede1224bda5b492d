"""Shared Signals (OpenID SSF 1.0): what the model says about the signals sekisho receives.

A company's IdP pushes Security Event Tokens (RFC 8417) to sekisho (RFC 8935). The model names
the one transmitter sekisho believes (its issuer and the JWKS its SETs are signed with) and
what each event does to the user it is about: `lock` (the default: the user is locked, as an
admin would lock them) or `ignore` (recorded in the audit trail, nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class SignalRule(StrEnum):
    LOCK = "lock"  # lock the user the event is about
    IGNORE = "ignore"  # audit it, change nothing


@dataclass(frozen=True)
class SignalReceiver:
    issuer: str  # the SETs' `iss`, exactly
    jwks_uri: str  # the transmitter's public keys (https, or http to loopback)
    audience: str | None = None  # the SETs' `aud` must hold it; None: sekisho's public URL
    token_env: str | None = None  # the variable holding the bearer token the transmitter sends
    on_session_revoked: SignalRule = SignalRule.LOCK
    on_credential_change: SignalRule = SignalRule.LOCK
    lock_for: timedelta | None = None  # how long such a lock holds; None: until removed


@dataclass(frozen=True)
class SharedSignals:
    receive: SignalReceiver | None = None  # None: sekisho receives no signals
