"""People's credentials: EnrollUser hands them out, LogOut ends one login."""

from __future__ import annotations

import secrets
from datetime import datetime

import pyotp
from sqlalchemy import update
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.domain.errors import InvalidInput
from sekisho.domain.events import LoggedOut, UserEnrolled
from sekisho.domain.identity import ISSUER, Enrolment, Principal
from sekisho.domain.text import check_name
from sekisho.ports import ModelSource
from sekisho.services import permissions
from sekisho.services.hashing import Passwords
from sekisho.services.secretbox import SecretBox
from sekisho.store.tables import TokenRow, UserRow
from sekisho.store.unit_of_work import Store


class EnrollUser:
    """Give a user from the model a fresh password and TOTP secret (shown once); new
    credentials end every login the old ones opened."""

    def __init__(
        self, store: Store, clock: Clock, models: ModelSource, passwords: Passwords, box: SecretBox
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._passwords, self._box = passwords, box

    def execute(self, actor: Actor, name: str) -> Enrolment:
        check_name("user", name)
        password = secrets.token_urlsafe(15)
        seed = pyotp.random_base32()
        uri = pyotp.TOTP(seed).provisioning_uri(name=name, issuer_name=ISSUER)
        now = self._clock.now()
        password_hash = self._passwords.hash(password)  # before the transaction: it is slow
        with self._store.write() as uow:
            model = self._models.model(uow.session)
            # Enrolling hands over the user's credentials: only admins (and sekisho itself).
            permissions.require_admin(model, actor, "enroll users")
            if model.user(name) is None:
                raise InvalidInput.one("user", "unknown_user", f"{name!r} is not in the model")
            again = _set_credentials(uow.session, name, password_hash, self._box.seal(seed), now)
            uow.session.execute(
                update(TokenRow)
                .where(TokenRow.user == name, TokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            uow.record(UserEnrolled(now, actor, name, again))
        return Enrolment(name, password, seed, uri)


def _set_credentials(
    s: Session, name: str, password_hash: str, sealed_seed: str, now: datetime
) -> bool:
    """The user's row with the new credentials; whether they had been enrolled before."""
    row = s.get(UserRow, name)
    again = row is not None and row.enrolled_at is not None
    if row is None:
        row = UserRow(name=name)
        s.add(row)
    row.password_hash, row.totp_secret = password_hash, sealed_seed
    row.totp_last_step, row.enrolled_at = None, now
    return again


class LogOut:
    """The caller's token is revoked (a second logout changes nothing)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self, principal: Principal, source: str) -> None:
        with self._store.write() as uow:
            row = uow.session.get(TokenRow, principal.token_id)
            if row is None or row.revoked_at is not None:
                return
            now = self._clock.now()
            row.revoked_at = now
            uow.record(LoggedOut(now, principal.name, source, principal.token_id, row.user))
