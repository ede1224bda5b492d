"""Identity: enrolment (password + TOTP), login, short-lived tokens.

Passwords are hashed with Argon2id; TOTP seeds are encrypted at rest and a code is accepted
once; tokens are random, stored only as their SHA-256, short-lived and revocable. A failed
login is refused without saying which part was wrong, after a delay, counts toward a lockout,
and is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pyotp
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sekisho.domain.actor import Actor
from sekisho.domain.errors import AccountLocked, AuthenticationFailed, InvalidInput, NotFound
from sekisho.domain.grants import GrantStatus
from sekisho.domain.text import check_name
from sekisho.domain.timespec import iso
from sekisho.services import policy
from sekisho.services.audit import AuditEvent
from sekisho.services.views import DirectoryView, GrantView, WhoAmI
from sekisho.store.tables import GrantRow, TokenRow, UserRow

if TYPE_CHECKING:
    from sekisho.domain.access import AccessModel
    from sekisho.services.core import Core

TOKEN_PREFIX = "sks_"
ISSUER = "sekisho"


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


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login_ended(
    user: str | None,
    revoked_at: datetime | None,
    expires_at: datetime | None,
    model: AccessModel,
    now: datetime,
) -> str | None:
    """Why a login token no longer holds (None: it does), from its stored row's fields
    (`user` None: no such token). The rules of `authenticate`, for the gateway, which reads
    the tokens of many live sessions at once."""
    if user is None or revoked_at is not None or expires_at is None:
        return "the login that opened it ended: revoked (logged out or re-enrolled)"
    if expires_at <= now:
        return "your login expired; log in again"
    if model.user(user) is None:
        return "this user is no longer in the access model"
    return None


class IdentityService:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._hasher = core.password_hasher
        # Verifying against this when the user is unknown keeps both refusals' timing alike.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    # -- enrolment ------------------------------------------------------------------------

    def enroll(self, actor: Actor, name: str) -> Enrolment:
        """Give a user from the model a fresh password and TOTP secret (shown once)."""
        core = self._core
        check_name("user", name)
        password = secrets.token_urlsafe(15)
        seed = pyotp.random_base32()
        uri = pyotp.TOTP(seed).provisioning_uri(name=name, issuer_name=ISSUER)
        now = core.now()
        with core.db.write() as s:
            model = core.models.model(s)
            # Enrolling hands over the user's credentials: only admins (and sekisho itself).
            policy.require_admin(model, actor, "enroll users")
            if model.user(name) is None:
                raise InvalidInput.one("user", "unknown_user", f"{name!r} is not in the model")
            row = s.get(UserRow, name)
            again = row is not None and row.enrolled_at is not None
            if row is None:
                row = UserRow(name=name, failed_logins=0)
                s.add(row)
            row.password_hash = self._hasher.hash(password)
            row.totp_secret = core.secrets.seal(seed)
            row.totp_last_step, row.enrolled_at = None, now
            row.failed_logins, row.locked_until = 0, None
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

    def login(self, name: str, password: str, code: str, source: str) -> IssuedToken:
        core = self._core
        now = core.now()
        with core.db.write() as s:
            row = s.get(UserRow, name) if len(name) <= 128 else None
            refusal = self._refuse_locked_or_unknown(s, row, name, password, source, now)
            if refusal is None and row is not None:
                step = self._check_credentials(row, password, code, now)
                if step is None:
                    refusal = self._count_failure(s, row, source, now, "wrong password or code")
                else:
                    row.failed_logins, row.locked_until, row.totp_last_step = 0, None, step
                    return self._issue(s, name, source, now)
        # The refusal is committed (counter, lockout, audit) before it is raised.
        self._delay_refusal()
        raise refusal or AuthenticationFailed("wrong user, password or code")

    def first_sign_in_uri(self, name: str, password: str, source: str) -> str:
        """The otpauth URI to scan at a user's first sign-in, once their password checks out.

        Only while no code was ever accepted: until then the authenticator may not be set up
        (the web UI shows this as a QR code); afterwards the secret is never shown again.
        Refusals are login's: vague, delayed, audited, a wrong password counts toward the
        lockout. A right password on an account already set up is refused the same way (not
        counted), so this never tells a password guesser more than login does.
        """
        core = self._core
        now = core.now()
        with core.db.write() as s:
            row = s.get(UserRow, name) if len(name) <= 128 else None
            refusal = self._refuse_locked_or_unknown(s, row, name, password, source, now)
            if refusal is None and row is not None:
                password_ok = row.password_hash is not None and self._verify_password(
                    row.password_hash, password
                )
                if not password_ok:
                    refusal = self._count_failure(s, row, source, now, "wrong password")
                elif row.totp_last_step is not None or row.totp_secret is None:
                    why = "authenticator already set up"
                    core.audit(s, _login_event("auth.totp_setup_refused", name, source, why))
                    refusal = AuthenticationFailed("wrong user, password or code")
                else:
                    seed = core.secrets.open(row.totp_secret)
                    core.audit(s, AuditEvent("auth.totp_setup", name, source[:256], subject=name))
                    return pyotp.TOTP(seed).provisioning_uri(name=name, issuer_name=ISSUER)
        self._delay_refusal()
        raise refusal or AuthenticationFailed("wrong user, password or code")

    def _refuse_locked_or_unknown(
        self,
        s: Session,
        row: UserRow | None,
        name: str,
        password: str,
        source: str,
        now: datetime,
    ) -> AuthenticationFailed | None:
        """The refusal for a locked or unknown account (audited), or None to check further."""
        core = self._core
        known = row is not None and core.models.model(s).user(name) is not None and row.enrolled_at
        if row is not None and row.locked_until is not None and row.locked_until > now:
            core.audit(s, _login_event("auth.login_refused", name, source, "locked"))
            return AccountLocked(
                f"too many failed attempts; try again after {iso(row.locked_until)}"
            )
        if not known or row is None:
            self._verify_password(self._dummy_hash, password)
            core.audit(s, _login_event("auth.login_failed", None, source, "unknown user"))
            return AuthenticationFailed("wrong user, password or code")
        return None

    def _count_failure(
        self, s: Session, row: UserRow, source: str, now: datetime, detail: str
    ) -> AuthenticationFailed:
        """One more failed attempt toward the lockout, audited."""
        settings = self._core.settings
        row.failed_logins += 1
        if row.failed_logins >= settings.lockout_threshold:
            row.locked_until = now + settings.lockout_duration
            row.failed_logins = 0
            detail = f"locked until {iso(row.locked_until)}"
        self._core.audit(s, _login_event("auth.login_failed", row.name, source, detail))
        return AuthenticationFailed("wrong user, password or code")

    def _delay_refusal(self) -> None:
        if self._core.settings.login_failure_delay:
            self._core.sleep(self._core.settings.login_failure_delay)

    def _check_credentials(
        self, row: UserRow, password: str, code: str, now: datetime
    ) -> int | None:
        """The accepted TOTP time step, or None. A code is good once (no replay)."""
        password_ok = row.password_hash is not None and self._verify_password(
            row.password_hash, password
        )
        # ASCII only: str.isdigit() accepts other scripts' digits (full-width from an IME),
        # which hmac.compare_digest refuses with a TypeError instead of a wrong-code refusal.
        well_formed = code.isascii() and code.isdigit() and len(code) == 6
        if row.totp_secret is None or not well_formed:
            return None
        totp = pyotp.TOTP(self._core.secrets.open(row.totp_secret))
        current = totp.timecode(now)
        accepted = None
        for step in (current - 1, current, current + 1):  # one step of clock drift either way
            if hmac.compare_digest(totp.generate_otp(step), code):
                accepted = step
        if not password_ok or accepted is None:
            return None
        if row.totp_last_step is not None and accepted <= row.totp_last_step:
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
            if row is None or row.revoked_at is not None:
                raise AuthenticationFailed("invalid or revoked token: log in again")
            if row.expires_at <= core.now():
                raise AuthenticationFailed(f"token expired at {iso(row.expires_at)}: log in again")
            if core.models.model(s).user(row.user) is None:
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
                policy.require_auditor(model, actor, "look up other users")
            user = model.user(name)
            if user is None:
                raise NotFound(f"no user {name!r}")
            rows = s.scalars(
                select(GrantRow)
                .where(GrantRow.user == name, GrantRow.status == GrantStatus.ACTIVE)
                .order_by(GrantRow.end_at)
            )
            grants = [v for v in (GrantView.of(r, now) for r in rows) if v.active]
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
