"""Identity: enrolment (password + TOTP), login, short-lived tokens.

Passwords are hashed with Argon2id, outside every transaction and a few at a time; TOTP seeds
are encrypted at rest and a code is accepted once; tokens are random, stored only as their
SHA-256, short-lived and revocable. A failed login is refused without saying which part was
wrong or whether the name exists, after a delay, is throttled by what was typed and from
where (`services.throttle`), and is audited.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import pyotp
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sekisho.domain.actor import Actor
from sekisho.domain.errors import AuthenticationFailed, InvalidInput, LoginThrottled, NotFound
from sekisho.domain.text import check_name
from sekisho.domain.timespec import iso
from sekisho.queries.viewers import viewer_of
from sekisho.services import permissions
from sekisho.services.audit import AuditEvent
from sekisho.services.batched_audit import BatchedAudit
from sekisho.services.hashing import HashQueue
from sekisho.services.throttle import Admission, LoginThrottle, Pause, RecentPauses
from sekisho.services.views import DirectoryView, GrantView, WhoAmI
from sekisho.store.grants import active_at
from sekisho.store.tables import GrantRow, TokenRow, UserRow

if TYPE_CHECKING:
    from sekisho.domain.access import AccessModel
    from sekisho.services.core import Core

TOKEN_PREFIX = "sks_"
ISSUER = "sekisho"
REFUSAL = "wrong user, password or code"
# Threads for sign-ins' short transactions on the event loop's path, apart from the API's.
LOGIN_STEP_THREADS = 4
T = TypeVar("T")


@dataclass(frozen=True)
class Enrolment:
    user: str
    password: str
    totp_secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class IssuedToken:
    token: str
    user: str
    expires_at: datetime


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    token_id: str
    expires_at: datetime


@dataclass(frozen=True)
class _Credentials:
    """An enrolled user's credentials, as read when an attempt was admitted."""

    password_hash: str
    totp_secret: str | None  # sealed
    totp_last_step: int | None

    def same_as(self, row: UserRow) -> bool:
        """Not re-enrolled since (so what was checked is still what holds)."""
        return (row.password_hash, row.totp_secret) == (self.password_hash, self.totp_secret)


@dataclass(frozen=True)
class _Refusal:
    """A refused sign-in: the error to raise once its audit entry is written."""

    error: AuthenticationFailed
    audited: Future[None]


@dataclass(frozen=True)
class _Attempt:
    """A sign-in between its admission and its outcome."""

    name: str
    source: str
    now: datetime
    admission: Admission
    user: _Credentials | None  # None: no such enrolled user (checked against a dummy)

    @property
    def trusted(self) -> bool:
        return self.admission.trusted


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginEnd(StrEnum):
    """Why a login token no longer holds: the one set of rules for every reader of tokens
    (the API and the web, one token at a time; the gateway, for many live sessions at once)."""

    REVOKED = "revoked"  # logged out, re-enrolled, or never issued
    EXPIRED = "expired"
    USER_GONE = "user_gone"  # no longer in the access model


def login_end(
    user: str | None,
    revoked_at: datetime | None,
    expires_at: datetime | None,
    model: AccessModel,
    now: datetime,
) -> LoginEnd | None:
    """Why the token whose stored row has these fields no longer holds (None: it holds;
    `user` None: no such token)."""
    if user is None or revoked_at is not None or expires_at is None:
        return LoginEnd.REVOKED
    if expires_at <= now:
        return LoginEnd.EXPIRED
    if model.user(user) is None:
        return LoginEnd.USER_GONE
    return None


def login_ended(
    user: str | None,
    revoked_at: datetime | None,
    expires_at: datetime | None,
    model: AccessModel,
    now: datetime,
) -> str | None:
    """`login_end` in the words a forwarder shows when its session ends for it."""
    ended = login_end(user, revoked_at, expires_at, model, now)
    if ended is None:
        return None
    return {
        LoginEnd.REVOKED: "the login that opened it ended: revoked (logged out or re-enrolled)",
        LoginEnd.EXPIRED: "your login expired; log in again",
        LoginEnd.USER_GONE: "this user is no longer in the access model",
    }[ended]


class IdentityService:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._hasher = core.password_hasher
        # Verifying against this when the user is unknown keeps both refusals' work alike.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self._throttle = LoginThrottle(core)
        self._refusals = BatchedAudit(core)
        self._recent_pauses = RecentPauses()
        self._hashes = HashQueue(core.settings.login_hash_slots)
        self._steps = ThreadPoolExecutor(LOGIN_STEP_THREADS, thread_name_prefix="sekisho-login")

    # -- enrolment ------------------------------------------------------------------------

    def enroll(self, actor: Actor, name: str) -> Enrolment:
        """Give a user from the model a fresh password and TOTP secret (shown once)."""
        core = self._core
        check_name("user", name)
        password = secrets.token_urlsafe(15)
        seed = pyotp.random_base32()
        uri = pyotp.TOTP(seed).provisioning_uri(name=name, issuer_name=ISSUER)
        now = core.now()
        password_hash = self._hasher.hash(password)  # before the transaction: it is slow
        with core.db.write() as s:
            model = core.models.model(s)
            # Enrolling hands over the user's credentials: only admins (and sekisho itself).
            permissions.require_admin(model, actor, "enroll users")
            if model.user(name) is None:
                raise InvalidInput.one("user", "unknown_user", f"{name!r} is not in the model")
            row = s.get(UserRow, name)
            again = row is not None and row.enrolled_at is not None
            if row is None:
                row = UserRow(name=name)
                s.add(row)
            row.password_hash = password_hash
            row.totp_secret = core.secrets.seal(seed)
            row.totp_last_step, row.enrolled_at = None, now
            # New credentials end every session the old ones opened.
            s.execute(
                update(TokenRow)
                .where(TokenRow.user == name, TokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            core.audit(
                s,
                AuditEvent(
                    "user.enrolled",
                    actor.name,
                    actor.source,
                    subject=name,
                    detail={"status": "re-enrolled" if again else "enrolled"},
                ),
            )
        if again:  # live gateway sessions opened with the old credentials end too
            core.publish("tokens.revoked", user=name, data={"reason": "credentials re-issued"})
        return Enrolment(name, password, seed, uri)

    # -- login ----------------------------------------------------------------------------
    #
    # Each sign-in runs in three steps, and the slow one holds nothing: (1) a short write
    # transaction reads the credentials and asks the throttle (which counts the attempt
    # before its password is checked); (2) the password hash, outside any transaction, in
    # its turn in the hash queue; (3) a short write transaction that re-checks under the
    # user's row lock (a TOTP code is good once however many use it at once) and issues the
    # token, or records the refusal. `login` runs them on the caller's thread (the CLI, the
    # tests); `login_async` on the event loop, with the refusal's delay awaited, not slept.

    def login(self, name: str, password: str, code: str, source: str) -> IssuedToken:
        """Password + TOTP code -> a token; every refusal vague, delayed and audited."""
        attempt = self._admit(name, source)
        if isinstance(attempt, _Attempt):
            check = partial(self._check_login, attempt, password, code)
            outcome = self._settle_login(attempt, self._hashes.run(check, attempt.trusted))
        else:
            outcome = attempt
        if isinstance(outcome, IssuedToken):
            return outcome
        outcome.audited.result()
        self._delay_refusal()
        raise outcome.error

    async def login_async(self, name: str, password: str, code: str, source: str) -> IssuedToken:
        """`login` for the event loop: no thread waits for the hash's turn or the delay."""
        attempt = await self._step(partial(self._admit, name, source))
        if isinstance(attempt, _Attempt):
            check = partial(self._check_login, attempt, password, code)
            step = await self._hashes.run_async(check, attempt.trusted)
            outcome = await self._step(partial(self._settle_login, attempt, step))
        else:
            outcome = attempt
        if isinstance(outcome, IssuedToken):
            return outcome
        await asyncio.wrap_future(outcome.audited)
        await self._delay_refusal_async()
        raise outcome.error

    def first_sign_in_uri(self, name: str, password: str, source: str) -> str:
        """The otpauth URI to scan at a user's first sign-in, once their password checks out.

        Only while no code was ever accepted: until then the authenticator may not be set up
        (the web UI shows this as a QR code); afterwards the secret is never shown again.
        Refusals are login's: vague, delayed, audited, throttled alike. A right password on
        an account already set up is refused and counted like a wrong one, so this never
        tells a password guesser more than login does.
        """
        attempt = self._admit(name, source)
        if isinstance(attempt, _Attempt):
            check = partial(self._check_password, attempt, password)
            outcome = self._settle_first_sign_in(attempt, self._hashes.run(check, attempt.trusted))
        else:
            outcome = attempt
        if isinstance(outcome, str):
            return outcome
        outcome.audited.result()
        self._delay_refusal()
        raise outcome.error

    async def first_sign_in_uri_async(self, name: str, password: str, source: str) -> str:
        """`first_sign_in_uri` for the event loop."""
        attempt = await self._step(partial(self._admit, name, source))
        if isinstance(attempt, _Attempt):
            check = partial(self._check_password, attempt, password)
            right = await self._hashes.run_async(check, attempt.trusted)
            outcome = await self._step(partial(self._settle_first_sign_in, attempt, right))
        else:
            outcome = attempt
        if isinstance(outcome, str):
            return outcome
        await asyncio.wrap_future(outcome.audited)
        await self._delay_refusal_async()
        raise outcome.error

    async def _step(self, work: Callable[[], T]) -> T:
        """A short transaction of a sign-in, on the sign-in threads, not the API's."""
        return await asyncio.wrap_future(self._steps.submit(work))

    def _admit(self, name: str, source: str) -> _Attempt | _Refusal:
        """Step 1: the credentials as stored now, and the throttle's yes (or its refusal).

        A paused attempt (most of a flood) needs no write: a pause this process saw is
        refused from memory, the others after a read; the audit entry of each shares a
        commit with the others' (`BatchedAudit`).
        """
        core = self._core
        now, source = core.now(), source[:256]
        remembered = self._recent_pauses.get(name, source, now)
        if remembered is not None:
            return self._paused(name, source, *remembered)
        with core.db.read() as s:
            user = self._credentials(s, name)
            trusted = self._throttle.signed_in_recently(s, name, source, now)
            pause = self._throttle.pause_for(s, name, source, now, trusted)
        if pause is None:
            with core.db.write() as s:
                admission = self._throttle.admit(s, name, source, now, trusted)
            if admission.pause is None:
                return _Attempt(name, source, now, admission, user)
            pause = admission.pause  # paused meanwhile
        self._recent_pauses.put(name, source, pause, user is not None)
        return self._paused(name, source, pause, user is not None)

    def _paused(self, name: str, source: str, pause: Pause, known: bool) -> _Refusal:
        why = f"throttled: too many failures for {pause.scope}, until {iso(pause.until)}"
        error = LoginThrottled(f"too many failed sign-ins; try again after {iso(pause.until)}")
        return self._refusal("auth.login_refused", name if known else None, source, why, error)

    def _credentials(self, s: Session, name: str) -> _Credentials | None:
        """What an enrolled user of the model signs in with; None for anyone else."""
        row = s.get(UserRow, name) if len(name) <= 128 else None
        if row is None or row.enrolled_at is None or row.password_hash is None:
            return None
        if self._core.models.model(s).user(name) is None:
            return None
        return _Credentials(row.password_hash, row.totp_secret, row.totp_last_step)

    def _check_login(self, attempt: _Attempt, password: str, code: str) -> int | None:
        """Step 2: the TOTP time step the password and code earn, or None. The same work
        for every name: an unknown one is checked against a dummy hash."""
        user = attempt.user
        if user is None:
            self._verify_password(self._dummy_hash, password)
            return None
        password_ok = self._verify_password(user.password_hash, password)
        step = self._totp_step(user, code, attempt.now)
        return step if password_ok else None

    def _check_password(self, attempt: _Attempt, password: str) -> bool:
        stored = attempt.user.password_hash if attempt.user else self._dummy_hash
        return self._verify_password(stored, password) and attempt.user is not None

    def _settle_login(self, attempt: _Attempt, step: int | None) -> IssuedToken | _Refusal:
        """Step 3: the token, if the code is still unused under the row lock; else refused."""
        if step is None or attempt.user is None:
            why = "unknown user" if attempt.user is None else "wrong password or code"
            return self._failed(attempt, why)
        with self._core.db.write() as s:
            row = s.get(UserRow, attempt.name, with_for_update=True)
            if row is None or not attempt.user.same_as(row):
                return self._failed(attempt, "credentials changed during the sign-in")
            if row.totp_last_step is not None and step <= row.totp_last_step:
                return self._failed(attempt, "wrong password or code (code already used)")
            row.totp_last_step = step
            self._throttle.succeeded(s, attempt.admission, attempt.now)
            self._recent_pauses.forget(attempt.name, attempt.source)
            return self._issue(s, attempt.name, attempt.source, attempt.now)

    def _settle_first_sign_in(self, attempt: _Attempt, right: bool) -> str | _Refusal:
        if not right or attempt.user is None:
            return self._failed(
                attempt, "unknown user" if attempt.user is None else "wrong password"
            )
        core = self._core
        with core.db.write() as s:
            row = s.get(UserRow, attempt.name, with_for_update=True)
            if row is None or not attempt.user.same_as(row):
                return self._failed(attempt, "credentials changed during the sign-in")
            if row.totp_last_step is not None or row.totp_secret is None:
                # Counted like a wrong password: a refund would tell the guesser it was right.
                why = "authenticator already set up"
                refused = AuthenticationFailed(REFUSAL)
                return self._refusal(
                    "auth.totp_setup_refused", row.name, attempt.source, why, refused
                )
            self._throttle.refund(s, attempt.admission, attempt.now)  # a right password
            seed = core.secrets.open(row.totp_secret)
            core.audit(s, AuditEvent("auth.totp_setup", row.name, attempt.source, subject=row.name))
            return pyotp.TOTP(seed).provisioning_uri(name=row.name, issuer_name=ISSUER)

    def _failed(self, attempt: _Attempt, why: str) -> _Refusal:
        """A failed attempt (counted when it was admitted), to be audited."""
        pauses = "; ".join(
            f"{p.scope} paused until {iso(p.until)}" for p in attempt.admission.paused
        )
        detail = f"{why}; {pauses}" if pauses else why
        known = attempt.name if attempt.user is not None else None
        error = AuthenticationFailed(REFUSAL)
        return self._refusal("auth.login_failed", known, attempt.source, detail, error)

    def _refusal(
        self, action: str, name: str | None, source: str, why: str, error: AuthenticationFailed
    ) -> _Refusal:
        """`error`, once its audit entry has committed (in a group commit with others)."""
        return _Refusal(error, self._refusals.record(_login_event(action, name, source, why)))

    def _delay_refusal(self) -> None:
        if self._core.settings.login_failure_delay:
            self._core.sleep(self._core.settings.login_failure_delay)

    async def _delay_refusal_async(self) -> None:
        if self._core.settings.login_failure_delay:
            await self._core.async_sleep(self._core.settings.login_failure_delay)

    def _totp_step(self, user: _Credentials, code: str, now: datetime) -> int | None:
        """The accepted TOTP time step, or None. A code is good once (no replay)."""
        # ASCII only: str.isdigit() accepts other scripts' digits (full-width from an IME),
        # which hmac.compare_digest refuses with a TypeError instead of a wrong-code refusal.
        well_formed = code.isascii() and code.isdigit() and len(code) == 6
        if user.totp_secret is None or not well_formed:
            return None
        totp = pyotp.TOTP(self._core.secrets.open(user.totp_secret))
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

    def _issue(self, s: Session, name: str, source: str, now: datetime) -> IssuedToken:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = now + self._core.settings.token_ttl
        s.add(
            TokenRow(
                id=token_id(token),
                user=name,
                issued_at=now,
                expires_at=expires,
                source=source[:256],
            )
        )
        self._core.audit(
            s,
            AuditEvent(
                "auth.login",
                name,
                source[:256],
                subject=name,
                detail={"expires": iso(expires)},
            ),
        )
        return IssuedToken(token, name, expires)

    def _verify_password(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # -- tokens ---------------------------------------------------------------------------

    def authenticate(self, token: str) -> Principal:
        """The caller behind a bearer token, or AuthenticationFailed (expired, revoked, forged)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise AuthenticationFailed("invalid token: log in again")
        core = self._core
        with core.db.read() as s:
            row = s.get(TokenRow, token_id(token))
            model = core.models.model(s)
        if row is None:
            raise AuthenticationFailed("invalid or revoked token: log in again")
        ended = login_end(row.user, row.revoked_at, row.expires_at, model, core.now())
        if ended is LoginEnd.REVOKED:
            raise AuthenticationFailed("invalid or revoked token: log in again")
        if ended is LoginEnd.EXPIRED:
            raise AuthenticationFailed(f"token expired at {iso(row.expires_at)}: log in again")
        if ended is LoginEnd.USER_GONE:
            raise AuthenticationFailed("this user is no longer in the access model")
        return Principal(row.user, row.id, row.expires_at)

    def logout(self, principal: Principal, source: str) -> None:
        core = self._core
        with core.db.write() as s:
            row = s.get(TokenRow, principal.token_id)
            if row is None or row.revoked_at is not None:
                return
            row.revoked_at = core.now()
            core.audit(s, AuditEvent("auth.logout", principal.name, source, subject=row.user))
        core.publish(
            "tokens.revoked",
            user=principal.name,
            data={"token_id": principal.token_id, "reason": "logged out"},
        )

    # -- who -----------------------------------------------------------------------------

    def whoami(self, actor: Actor, expires_at: datetime | None = None) -> WhoAmI:
        return self.describe(actor, actor.name, expires_at)

    def describe(
        self,
        actor: Actor,
        name: str,
        expires_at: datetime | None = None,
        *,
        directory: bool = False,
    ) -> WhoAmI:
        """A user's identity, groups, live grants and, on request, the provider's view."""
        core = self._core
        now = core.now()
        with core.db.read() as s:
            model = core.models.model(s)
            if name != actor.name:
                permissions.require_auditor(model, actor, "look up other users")
            user = model.user(name)
            if user is None:
                raise NotFound(f"no user {name!r}")
            rows = s.scalars(
                select(GrantRow)
                .where(GrantRow.user == name, active_at(now))
                .order_by(GrantRow.end_at)
            )
            viewer = viewer_of(model, actor)  # what the asker may do to them
            grants = [v for v in (GrantView.of(r, now, viewer) for r in rows) if v.active]
            work_groups = [g.name for g in model.groups if g.is_work]
        seen = self._directory(name, work_groups) if directory else None
        return WhoAmI(
            user=name,
            display_name=user.display_name or name,
            email=user.email,
            groups=[g.name for g in model.standing_groups_of(name)],
            admin=model.is_admin(name),
            auditor=model.is_auditor(name),
            token_expires_at=expires_at,
            grants=grants,
            directory=seen,
        )

    def _directory(self, name: str, work_groups: list[str]) -> DirectoryView:
        provider = self._core.provider
        return DirectoryView(
            provider=provider.name,
            memberships=[g for g in work_groups if name in provider.members(g)],
            tags=provider.tags(name),
        )


def _login_event(action: str, name: str | None, source: str, why: str) -> AuditEvent:
    return AuditEvent(
        action,
        name or "unknown",
        source[:256],
        outcome="denied",
        subject=name,
        detail={"reason": why},
    )
