"""ReceiveSignal: a SET the company's IdP pushed (RFC 8935), checked and acted on.

Every check comes before any change: the transmitter's bearer token, the SET's signature
against the issuer's JWKS, its type, issuer, audience, age, event and subject. Then, in one
transaction, its `jti` is claimed (a replay is refused, nothing changed) and the model's
rule applies: `lock` places a user lock exactly as an admin's (what it covers ends, every
session is cut), unless one already holds; `ignore` only records it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from joserfc.jwk import KeySet
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel
from sekisho.domain.actor import Actor
from sekisho.domain.events import SignalReceived
from sekisho.domain.locks import LockKind
from sekisho.domain.shared_signals import SignalReceiver, SignalRule
from sekisho.domain.text import has_control
from sekisho.domain.timespec import format_duration
from sekisho.jose.issuer_keys import IssuerKeys, KeysUnavailable, NotASignedToken, kid_of
from sekisho.operations.locks import Cause, PlaceLock
from sekisho.ports import ModelSource
from sekisho.signals import sets
from sekisho.signals.receiver import CLOCK_SKEW, MAX_AGE, ReceivedSet, SetRejected, read_set
from sekisho.signals.subjects import subject_user
from sekisho.store import locks as stored_locks
from sekisho.store.tables import SsfReceivedRow
from sekisho.store.unit_of_work import Store, UnitOfWork

SIGNALS = Actor.system("shared-signals")
LOCKED, ALREADY_LOCKED, IGNORED = "locked", "already locked", "ignored"


@dataclass(frozen=True)
class SignalOutcome:
    outcome: str  # locked, already locked, ignored
    user: str
    lock_id: int | None = None


class ReceiveSignal:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        place: PlaceLock,
        keys: IssuerKeys,
        *,
        public_url: str,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._place, self._keys, self._public_url = place, keys, public_url
        self._environ = environ

    def execute(self, token: str, authorization: str | None) -> SignalOutcome:
        """What the SET did; SetRejected (its RFC 8935 error) and nothing changed if bad."""
        model = self._models.model()
        receiver = _receiver_of(model)
        self._authenticate(receiver, authorization)
        keys = _issuer_keys(self._keys, receiver.jwks_uri, token)
        audience = receiver.audience or self._public_url
        now = self._clock.now()
        got = read_set(token, keys, issuer=receiver.issuer, audience=audience, now=now)
        user = subject_user(model, got.subject)
        if _rule(receiver, got.event_type) is SignalRule.LOCK and not self._locked(user, now):
            lock_for = format_duration(receiver.lock_for) if receiver.lock_for else None
            placed = self._place.execute(
                SIGNALS,
                "user",
                user,
                _reason(got),
                duration=lock_for,
                cause=_claim(got, user, LOCKED),
            )
            return SignalOutcome(LOCKED, user, placed.lock_id)
        outcome = ALREADY_LOCKED if _rule(receiver, got.event_type) is SignalRule.LOCK else IGNORED
        with self._store.write() as uow:
            _claim(got, user, outcome)(uow, now)
        return SignalOutcome(outcome, user)

    def _authenticate(self, receiver: SignalReceiver, authorization: str | None) -> None:
        """The bearer token the model names, compared in constant time; none named, none
        asked (the SET's signature is then the only proof)."""
        if receiver.token_env is None:
            return
        env = os.environ if self._environ is None else self._environ
        expected = env.get(receiver.token_env, "")
        if not expected:
            raise SetRejected(
                "authentication_failed", "this receiver's token is not configured", status=503
            )
        given = (authorization or "").encode()
        if not hmac.compare_digest(given, f"Bearer {expected}".encode()):
            raise SetRejected("authentication_failed", "a valid bearer token is required", 401)

    def _locked(self, user: str, now: datetime) -> bool:
        with self._store.read() as s:
            return any(
                lock.kind is LockKind.USER and lock.subject == user
                for lock in stored_locks.in_force(s, now)
            )


def _receiver_of(model: AccessModel) -> SignalReceiver:
    receiver = model.shared_signals.receive
    if receiver is None:
        raise SetRejected("access_denied", "this sekisho receives no shared signals", 403)
    return receiver


def _rule(receiver: SignalReceiver, event_type: str) -> SignalRule:
    if event_type == sets.SESSION_REVOKED:
        return receiver.on_session_revoked
    if event_type == sets.CREDENTIAL_CHANGE:
        return receiver.on_credential_change
    return SignalRule.IGNORE  # verification, and events sekisho does not act on


def _reason(got: ReceivedSet) -> str:
    """The lock's reason: which signal, from whom, and the transmitter's own words (text)."""
    name = got.event_type.rsplit("/", 1)[-1]
    said = got.event.get("reason_admin")
    if isinstance(said, dict):
        said = said.get("en") or next(iter(said.values()), None)
    words = " ".join(str(said).split())[:200] if isinstance(said, str) else ""
    if has_control(words, multiline=False):
        words = ""
    return f"shared signal {name} from {got.issuer[:200]}" + (f": {words}" if words else "")


def _claim(got: ReceivedSet, user: str, outcome: str) -> Cause:
    """Claim the SET's jti in the caller's transaction (a replay is refused there, so nothing
    it would have done happens), forget those past the replay window, record it."""

    def claim(uow: UnitOfWork, now: datetime) -> None:
        s = uow.session
        if s.get(SsfReceivedRow, (got.issuer, got.jti)) is not None:
            raise SetRejected("invalid_request", "this SET's jti was received before (a replay)")
        s.add(SsfReceivedRow(issuer=got.issuer, jti=got.jti, received_at=now))
        try:
            s.flush()
        except IntegrityError:  # the same SET, at the same moment, on another node
            raise SetRejected("invalid_request", "this SET's jti was received before") from None
        window = now - MAX_AGE - CLOCK_SKEW - timedelta(hours=1)
        s.execute(delete(SsfReceivedRow).where(SsfReceivedRow.received_at < window))
        uow.record(SignalReceived(now, got.issuer, got.jti, got.event_type, user, outcome))

    return claim


def _issuer_keys(keys: IssuerKeys, uri: str, token: str) -> KeySet:
    """The transmitter's keys for this SET, or the RFC 8935 error that says why not."""
    try:
        return keys.keys(uri, kid_of(token))
    except NotASignedToken:
        raise SetRejected("invalid_request", "the body is not a signed JWT") from None
    except KeysUnavailable as exc:
        raise SetRejected("invalid_key", str(exc), status=503) from None
