"""`sekisho login --device`: sign in through the identity provider from a shell with no
browser (RFC 8628). StartDeviceSignIn asks the IdP for a device code and hands the CLI a
handle and the user code to enter; PollDeviceSignIn asks the IdP, no faster than it allows,
until the person has approved, then issues the login as any other sign-in.

The IdP's device code never leaves sekisho (sealed at rest); the CLI holds only a random
handle, stored as its SHA-256. A refusal (denied at the IdP, expired, a person the model does
not know, a lock) ends the sign-in, is audited and says why.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import Delete, delete

from sekisho.clock import Clock
from sekisho.domain.errors import Locked, SekishoError, Unavailable
from sekisho.domain.identity import IssuedToken, token_id  # the SHA-256 a secret is kept as
from sekisho.domain.locks import lock_of_user
from sekisho.domain.sso import IdpSignIn, UnknownPerson
from sekisho.operations.idp_sign_in import check_room, oidc_settings, sign_in_of
from sekisho.operations.sign_in import issue_token, refuse_idp_sign_in
from sekisho.ports import ModelSource
from sekisho.services.secretbox import SecretBox
from sekisho.sso.device import poll_device, start_device
from sekisho.sso.oidc import IdpRefused, IdpUnavailable, OidcClient
from sekisho.store import locks
from sekisho.store.tables import DeviceSignInRow
from sekisho.store.unit_of_work import Store

SLOW_DOWN_S = 5  # RFC 8628 3.5: each slow_down adds this to the interval
MAX_HANDLE = 128


def _delete_of(handle: str) -> Delete:
    return delete(DeviceSignInRow).where(DeviceSignInRow.id == token_id(handle))


@dataclass(frozen=True)
class DeviceStarted:
    handle: str  # what the CLI polls with
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: datetime
    interval: int


@dataclass(frozen=True)
class DeviceWaiting:
    """Not approved yet: ask again after `interval` seconds."""

    interval: int


class StartDeviceSignIn:
    def __init__(
        self, store: Store, clock: Clock, models: ModelSource, oidc: OidcClient, box: SecretBox
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._oidc, self._box = oidc, box

    def execute(self, source: str) -> DeviceStarted:
        """A device sign-in at the IdP; RateLimited before the IdP is asked when `source` (or
        everyone) has too many in flight."""
        settings = oidc_settings(self._models.model())
        with self._store.read() as s:
            check_room(s, DeviceSignInRow, source, self._clock.now())
        try:
            grant = start_device(self._oidc, settings)
        except (IdpUnavailable, IdpRefused) as exc:
            raise Unavailable(f"device sign-in cannot start: {exc}") from None
        handle, now = secrets.token_urlsafe(32), self._clock.now()
        expires = now + timedelta(seconds=grant.expires_in)
        with self._store.write() as uow:
            uow.session.execute(delete(DeviceSignInRow).where(DeviceSignInRow.expires_at <= now))
            key = check_room(uow.session, DeviceSignInRow, source, now)
            uow.session.add(
                DeviceSignInRow(
                    id=token_id(handle),
                    device_code=self._box.seal(grant.device_code),
                    interval_s=grant.interval,
                    next_poll_at=now,
                    expires_at=expires,
                    source=key,
                )
            )
        return DeviceStarted(
            handle,
            grant.user_code,
            grant.verification_uri,
            grant.verification_uri_complete,
            expires,
            grant.interval,
        )


class PollDeviceSignIn:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        oidc: OidcClient,
        box: SecretBox,
        token_ttl: timedelta,
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._oidc, self._box, self._token_ttl = oidc, box, token_ttl

    def execute(self, handle: str, source: str) -> IssuedToken | DeviceWaiting:
        source = source[:256]
        due = self._turn(handle, source)
        if isinstance(due, DeviceWaiting):
            return due
        model = self._models.model()
        settings = oidc_settings(model)
        try:
            answer = poll_device(self._oidc, settings, due)
            if isinstance(answer, str):
                return self._wait(handle, slow_down=answer == "slow_down")
            sign_in = sign_in_of(model, settings, answer)
        except (IdpRefused, UnknownPerson) as exc:
            self._end(handle)
            self._refuse(None, source, str(exc))
        except IdpUnavailable as exc:
            raise Unavailable(str(exc)) from None  # the sign-in stays: poll again later
        return self._complete(handle, sign_in, source)

    def _turn(self, handle: str, source: str) -> str | DeviceWaiting:
        """The device code, if it is this handle's turn to ask the IdP (the next turn is
        booked now); DeviceWaiting if it asked too soon."""
        now = self._clock.now()
        with self._store.write() as uow:
            row = None
            if 0 < len(handle) <= MAX_HANDLE:
                row = uow.session.get(DeviceSignInRow, token_id(handle), with_for_update=True)
            if row is not None and row.expires_at > now:
                if now < row.next_poll_at:
                    return DeviceWaiting(row.interval_s)
                row.next_poll_at = now + timedelta(seconds=row.interval_s)
                return self._box.open(row.device_code)
            if row is not None:
                uow.session.delete(row)
        self._refuse(None, source, "this device sign-in expired or ended; run sekisho login again")

    def _wait(self, handle: str, *, slow_down: bool) -> DeviceWaiting:
        with self._store.write() as uow:
            row = uow.session.get(DeviceSignInRow, token_id(handle), with_for_update=True)
            if row is None:
                return DeviceWaiting(SLOW_DOWN_S)
            if slow_down:
                row.interval_s += SLOW_DOWN_S
                row.next_poll_at = self._clock.now() + timedelta(seconds=row.interval_s)
            return DeviceWaiting(row.interval_s)

    def _end(self, handle: str) -> None:
        with self._store.write() as uow:
            uow.session.execute(_delete_of(handle))

    def _complete(self, handle: str, sign_in: IdpSignIn, source: str) -> IssuedToken:
        now = self._clock.now()
        with self._store.write() as uow:
            uow.session.execute(_delete_of(handle))
            lock = lock_of_user(locks.in_force(uow.session, now), sign_in.user)
            if lock is None:
                return issue_token(uow, sign_in.user, source, now, self._token_ttl, sign_in)
        self._refuse(sign_in.user, source, lock.message, Locked(lock.message))

    def _refuse(
        self, user: str | None, source: str, why: str, error: SekishoError | None = None
    ) -> NoReturn:
        refuse_idp_sign_in(self._store, self._clock, user, source, why, error)
