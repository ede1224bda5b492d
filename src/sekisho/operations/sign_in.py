"""Signing in: password + TOTP code -> a token (LogIn); the authenticator's URI at a first
sign-in (ShowTotpSetup). Both pass the same gate (SignInGate) and are refused alike.

Each sign-in runs in three steps, and the slow one holds nothing: (1) `admit`, a short write
transaction that reads the credentials and asks the throttle (which counts the attempt
before its password is checked); (2) `check`, the password hash, outside any transaction (in
its turn in the hash queue, which the caller runs it in); (3) `settle`, a short write
transaction that re-checks under the user's row lock (a TOTP code is good once however many
use it at once) and issues the token, or records the refusal.

A refusal is an outcome, not an exception: its event (a `SignInRefused`, whose handler writes
the audit entry) is committed in a group commit with others' (`BatchedAudit`), and the
caller raises its error only once that commit is done, after the refusal's delay.
"""

from __future__ import annotations

import hmac
import secrets
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

import pyotp
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.errors import AuthenticationFailed, Locked, LoginThrottled, SekishoError
from sekisho.domain.events import (
    IdpSignInRefused,
    SignedIn,
    SignInFailed,
    SignInLocked,
    SignInRefused,
    SignInThrottled,
    TotpSetupRefused,
    TotpSetupShown,
)
from sekisho.domain.identity import ISSUER, REFUSAL, TOKEN_PREFIX, IssuedToken, token_id
from sekisho.domain.locks import lock_of_user
from sekisho.domain.sso import IdpSignIn
from sekisho.domain.timespec import iso
from sekisho.ports import ModelSource
from sekisho.services.batched_audit import BatchedAudit
from sekisho.services.hashing import Passwords
from sekisho.services.secretbox import SecretBox
from sekisho.services.throttle import Admission, LoginThrottle, Pause, RecentPauses
from sekisho.store import directory, locks
from sekisho.store.tables import TokenRow, UserRow
from sekisho.store.unit_of_work import Store, UnitOfWork


@dataclass(frozen=True)
class Credentials:
    """An enrolled user's credentials, as read when an attempt was admitted."""

    password_hash: str
    totp_secret: str | None  # sealed
    totp_last_step: int | None

    def same_as(self, row: UserRow) -> bool:
        """Not re-enrolled since (so what was checked is still what holds)."""
        return (row.password_hash, row.totp_secret) == (self.password_hash, self.totp_secret)


@dataclass(frozen=True)
class Attempt:
    """A sign-in between its admission and its outcome."""

    name: str
    source: str
    now: datetime
    admission: Admission
    user: Credentials | None  # None: no such enrolled user (checked against a dummy)

    @property
    def trusted(self) -> bool:
        return self.admission.trusted


@dataclass(frozen=True)
class Refused:
    """A refused sign-in: the error to raise once its audit entry has committed."""

    error: SekishoError  # AuthenticationFailed, or Locked for a locked user's right password
    audited: Future[None]


class SignInGate:
    """What every sign-in passes first (the throttle, the credentials as stored), and how
    every refusal is recorded."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        throttle: LoginThrottle,
        refusals: BatchedAudit,
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._throttle, self._refusals = throttle, refusals
        self._recent_pauses = RecentPauses()

    def admit(self, name: str, source: str) -> Attempt | Refused:
        """Step 1: the credentials as stored now, and the throttle's yes (or its refusal).

        A paused attempt (most of a flood) needs no write: a pause this process saw is
        refused from memory, the others after a read.
        """
        now, source = self._clock.now(), source[:256]
        remembered = self._recent_pauses.get(name, source, now)
        if remembered is not None:
            return self._paused(name, source, *remembered)
        with self._store.read() as s:
            user = self._credentials(s, name)
            trusted = self._throttle.signed_in_recently(s, name, source, now)
            pause = self._throttle.pause_for(s, name, source, now, trusted)
        if pause is None:
            with self._store.write() as uow:
                admission = self._throttle.admit(uow.session, name, source, now, trusted)
            if admission.pause is None:
                return Attempt(name, source, now, admission, user)
            pause = admission.pause  # paused meanwhile
        self._recent_pauses.put(name, source, pause, user is not None)
        return self._paused(name, source, pause, user is not None)

    def succeeded(self, s: Session, attempt: Attempt) -> None:
        """The attempt signed in: its pair of name and address starts over."""
        self._throttle.succeeded(s, attempt.admission, attempt.now)
        self._recent_pauses.forget(attempt.name, attempt.source)

    def refund(self, s: Session, attempt: Attempt) -> None:
        """The attempt was no guess (a right password): its count is taken back."""
        self._throttle.refund(s, attempt.admission, attempt.now)

    def failed(self, attempt: Attempt, why: str) -> Refused:
        """A failed attempt (counted when it was admitted), and the pauses it started."""
        pauses = "; ".join(
            f"{p.scope} paused until {iso(p.until)}" for p in attempt.admission.paused
        )
        reason = f"{why}; {pauses}" if pauses else why
        known = attempt.name if attempt.user is not None else None
        return self.refuse(SignInFailed(self._clock.now(), known, attempt.source, reason))

    def refuse(self, refusal: SignInRefused, error: SekishoError | None = None) -> Refused:
        """`error` (vague by default), once the refusal has committed with others'."""
        return Refused(error or AuthenticationFailed(REFUSAL), self._refusals.record(refusal))

    def _paused(self, name: str, source: str, pause: Pause, known: bool) -> Refused:
        why = f"throttled: too many failures for {pause.scope}, until {iso(pause.until)}"
        error = LoginThrottled(f"too many failed sign-ins; try again after {iso(pause.until)}")
        refusal = SignInThrottled(self._clock.now(), name if known else None, source, why)
        return self.refuse(refusal, error)

    def _credentials(self, s: Session, name: str) -> Credentials | None:
        """What an enrolled user of the model signs in with; None for anyone else."""
        row = s.get(UserRow, name) if len(name) <= 128 else None
        if row is None or row.enrolled_at is None or row.password_hash is None:
            return None
        if self._models.model(s).user(name) is None:
            return None
        return Credentials(row.password_hash, row.totp_secret, row.totp_last_step)


class LogIn:
    """Password + TOTP code -> a short-lived token; a code is good once."""

    def __init__(
        self,
        gate: SignInGate,
        store: Store,
        clock: Clock,
        passwords: Passwords,
        box: SecretBox,
        token_ttl: timedelta,
    ) -> None:
        self._gate, self._store, self._clock = gate, store, clock
        self._passwords, self._box, self._token_ttl = passwords, box, token_ttl

    def check(self, attempt: Attempt, password: str, code: str) -> int | None:
        """Step 2: the TOTP time step the password and code earn, or None. The same work
        for every name: an unknown one is checked against a dummy hash."""
        user = attempt.user
        password_ok = self._passwords.verify(user.password_hash if user else None, password)
        if user is None:
            return None
        step = totp_step(self._box, user, code, attempt.now)
        return step if password_ok else None

    def settle(self, attempt: Attempt, step: int | None) -> IssuedToken | Refused:
        """Step 3: the token, if the code is still unused under the row lock; else refused."""
        if step is None or attempt.user is None:
            why = "unknown user" if attempt.user is None else "wrong password or code"
            return self._gate.failed(attempt, why)
        with self._store.write() as uow:
            row = uow.session.get(UserRow, attempt.name, with_for_update=True)
            if row is None or not attempt.user.same_as(row):
                return self._gate.failed(attempt, "credentials changed during the sign-in")
            if row.totp_last_step is not None and step <= row.totp_last_step:
                return self._gate.failed(attempt, "wrong password or code (code already used)")
            row.totp_last_step = step
            lock = lock_of_user(locks.in_force(uow.session, attempt.now), attempt.name)
            if lock is not None:  # told only to whoever has the password and a fresh code
                self._gate.refund(uow.session, attempt)
                refusal = SignInLocked(
                    self._clock.now(), attempt.name, attempt.source, lock.message
                )
                return self._gate.refuse(refusal, Locked(lock.message))
            self._gate.succeeded(uow.session, attempt)
            return self._issue(uow, attempt)

    def _issue(self, uow: UnitOfWork, attempt: Attempt) -> IssuedToken:
        return issue_token(uow, attempt.name, attempt.source, attempt.now, self._token_ttl)


def issue_token(
    uow: UnitOfWork,
    user: str,
    source: str,
    now: datetime,
    ttl: timedelta,
    idp: IdpSignIn | None = None,
) -> IssuedToken:
    """A fresh login token for `user`, stored as its hash with how it was proven (password
    + TOTP, or the identity provider's ID token), and its `SignedIn`."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires, source = now + ttl, source[:256]
    row = TokenRow(id=token_id(token), user=user, issued_at=now, expires_at=expires, source=source)
    if idp is not None:
        row.auth_method, row.idp_subject, row.auth_time = "oidc", idp.subject, idp.auth_time
        row.amr, row.acr = " ".join(idp.amr)[:256] or None, idp.acr
        if idp.groups is not None:  # standing groups may take members from the claim
            directory.claimed_groups(uow.session, user, idp.issuer, idp.groups, now)
    uow.session.add(row)
    uow.record(SignedIn(now, user, source, expires, idp=idp))
    return IssuedToken(token, user, expires)


def refuse_idp_sign_in(
    store: Store,
    clock: Clock,
    user: str | None,
    source: str,
    why: str,
    error: SekishoError | None = None,
) -> NoReturn:
    """A sign-in through the identity provider that signs nobody in: audited, then raised
    (AuthenticationFailed saying why, unless another error is given)."""
    with store.write() as uow:
        uow.record(IdpSignInRefused(clock.now(), user, source, why))
    raise error or AuthenticationFailed(f"Sign-in refused: {why}")


class ShowTotpSetup:
    """The otpauth URI to scan at a user's first sign-in, once their password checks out.

    Only while no code was ever accepted: until then the authenticator may not be set up
    (the web UI shows this as a QR code); afterwards the secret is never shown again. A
    right password on an account already set up is refused and counted like a wrong one,
    so this never tells a password guesser more than a login does.
    """

    def __init__(
        self, gate: SignInGate, store: Store, clock: Clock, passwords: Passwords, box: SecretBox
    ) -> None:
        self._gate, self._store, self._clock = gate, store, clock
        self._passwords, self._box = passwords, box

    def check(self, attempt: Attempt, password: str) -> bool:
        stored = attempt.user.password_hash if attempt.user else None
        return self._passwords.verify(stored, password)

    def settle(self, attempt: Attempt, right: bool) -> str | Refused:
        if not right or attempt.user is None:
            why = "unknown user" if attempt.user is None else "wrong password"
            return self._gate.failed(attempt, why)
        with self._store.write() as uow:
            row = uow.session.get(UserRow, attempt.name, with_for_update=True)
            if row is None or not attempt.user.same_as(row):
                return self._gate.failed(attempt, "credentials changed during the sign-in")
            now = self._clock.now()
            if row.totp_last_step is not None or row.totp_secret is None:
                # Counted like a wrong password: a refund would tell the guesser it was right.
                why = "authenticator already set up"
                return self._gate.refuse(TotpSetupRefused(now, row.name, attempt.source, why))
            self._gate.refund(uow.session, attempt)
            seed = self._box.open(row.totp_secret)
            uow.record(TotpSetupShown(now, row.name, attempt.source))
            return pyotp.TOTP(seed).provisioning_uri(name=row.name, issuer_name=ISSUER)


def totp_step(box: SecretBox, user: Credentials, code: str, now: datetime) -> int | None:
    """The accepted TOTP time step, or None. A code is good once (no replay)."""
    # ASCII only: str.isdigit() accepts other scripts' digits (full-width from an IME),
    # which hmac.compare_digest refuses with a TypeError instead of a wrong-code refusal.
    well_formed = code.isascii() and code.isdigit() and len(code) == 6
    if user.totp_secret is None or not well_formed:
        return None
    totp = pyotp.TOTP(box.open(user.totp_secret))
    current = totp.timecode(now)
    accepted = None
    for step in (current - 1, current, current + 1):  # one step of clock drift either way
        if hmac.compare_digest(totp.generate_otp(step), code):
            accepted = step
    if accepted is None:
        return None
    if user.totp_last_step is not None and accepted <= user.totp_last_step:
        return None
    return accepted
