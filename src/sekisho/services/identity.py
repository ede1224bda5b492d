"""Identity as interfaces call it: enrolment (password + TOTP), sign-in, tokens, who is who.

Passwords are hashed with Argon2id, outside every transaction and a few at a time; TOTP seeds
are encrypted at rest and a code is accepted once; tokens are random, stored only as their
SHA-256, short-lived and revocable. A failed sign-in is refused without saying which part
was wrong or whether the name exists, after a delay, is throttled by what was typed and from
where (`services.throttle`), and is audited before the caller hears of it.

Each verb is an operation (`operations.identity`, `operations.sign_in`) or a query
(`queries.identity`); this facade runs a sign-in's steps on the caller's thread (`login`:
the CLI, the tests) or on the event loop (`login_async`: the API and the web, where no
thread waits for the hash's turn or the refusal's delay).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import NoReturn, TypeVar

from sekisho.domain.actor import Actor
from sekisho.domain.identity import (
    Enrolment,
    IssuedToken,
    Principal,
)
from sekisho.operations.identity import EnrollUser, LogOut
from sekisho.operations.sign_in import Attempt, LogIn, Refused, ShowTotpSetup, SignInGate
from sekisho.queries.identity import IdentityQueries
from sekisho.services.hashing import HashQueue
from sekisho.services.views import WhoAmI

# Threads for sign-ins' short transactions on the event loop's path, apart from the API's.
LOGIN_STEP_THREADS = 4
C = TypeVar("C")
T = TypeVar("T")


@dataclass(frozen=True)
class RefusalDelay:
    """How long a refused sign-in waits before it answers, slept or awaited."""

    seconds: float
    sleep: Callable[[float], None]
    async_sleep: Callable[[float], Awaitable[None]]


class IdentityService:
    def __init__(
        self,
        *,
        enroll: EnrollUser,
        gate: SignInGate,
        log_in: LogIn,
        totp_setup: ShowTotpSetup,
        log_out: LogOut,
        queries: IdentityQueries,
        hashes: HashQueue,
        delay: RefusalDelay,
    ) -> None:
        self._enroll, self._gate, self._log_in = enroll, gate, log_in
        self._totp_setup, self._log_out, self._queries = totp_setup, log_out, queries
        self._hashes, self._delay = hashes, delay
        self._steps = ThreadPoolExecutor(LOGIN_STEP_THREADS, thread_name_prefix="sekisho-login")

    def enroll(self, actor: Actor, name: str) -> Enrolment:
        return self._enroll.execute(actor, name)

    # -- signing in -----------------------------------------------------------------------

    def login(self, name: str, password: str, code: str, source: str) -> IssuedToken:
        """Password + TOTP code -> a token; every refusal vague, delayed and audited."""
        check = partial(self._log_in.check, password=password, code=code)
        return self._sign_in(name, source, check, self._log_in.settle)

    async def login_async(self, name: str, password: str, code: str, source: str) -> IssuedToken:
        """`login` for the event loop: no thread waits for the hash's turn or the delay."""
        check = partial(self._log_in.check, password=password, code=code)
        return await self._sign_in_async(name, source, check, self._log_in.settle)

    def first_sign_in_uri(self, name: str, password: str, source: str) -> str:
        """The otpauth URI to scan at a first sign-in (`ShowTotpSetup`); refused as login is."""
        check = partial(self._totp_setup.check, password=password)
        return self._sign_in(name, source, check, self._totp_setup.settle)

    async def first_sign_in_uri_async(self, name: str, password: str, source: str) -> str:
        """`first_sign_in_uri` for the event loop."""
        check = partial(self._totp_setup.check, password=password)
        return await self._sign_in_async(name, source, check, self._totp_setup.settle)

    def _sign_in(
        self,
        name: str,
        source: str,
        check: Callable[[Attempt], C],
        settle: Callable[[Attempt, C], T | Refused],
    ) -> T:
        attempt = self._gate.admit(name, source)
        if isinstance(attempt, Refused):
            self._refuse(attempt)
        outcome = settle(attempt, self._hashes.run(lambda: check(attempt), attempt.trusted))
        if isinstance(outcome, Refused):
            self._refuse(outcome)
        return outcome

    async def _sign_in_async(
        self,
        name: str,
        source: str,
        check: Callable[[Attempt], C],
        settle: Callable[[Attempt, C], T | Refused],
    ) -> T:
        attempt = await self._step(lambda: self._gate.admit(name, source))
        if isinstance(attempt, Refused):
            await self._refuse_async(attempt)
        checked = await self._hashes.run_async(lambda: check(attempt), attempt.trusted)
        outcome = await self._step(lambda: settle(attempt, checked))
        if isinstance(outcome, Refused):
            await self._refuse_async(outcome)
        return outcome

    def _refuse(self, refused: Refused) -> NoReturn:
        """The refusal's error, once its audit entry has committed and its delay passed."""
        refused.audited.result()
        if self._delay.seconds:
            self._delay.sleep(self._delay.seconds)
        raise refused.error

    async def _refuse_async(self, refused: Refused) -> NoReturn:
        await asyncio.wrap_future(refused.audited)
        if self._delay.seconds:
            await self._delay.async_sleep(self._delay.seconds)
        raise refused.error

    async def _step(self, work: Callable[[], T]) -> T:
        """A short transaction of a sign-in, on the sign-in threads, not the API's."""
        return await asyncio.wrap_future(self._steps.submit(work))

    # -- tokens and people ----------------------------------------------------------------

    def authenticate(self, token: str) -> Principal:
        """The caller behind a bearer token, or AuthenticationFailed (expired, revoked, forged)."""
        return self._queries.authenticate(token)

    def logout(self, principal: Principal, source: str) -> None:
        self._log_out.execute(principal, source)

    def whoami(self, actor: Actor, principal: Principal | None = None) -> WhoAmI:
        """The caller, with their login's end and how it was proven."""
        if principal is None:
            return self.describe(actor, actor.name)
        return self._queries.describe(
            actor, actor.name, principal.expires_at, proof=principal.proof
        )

    def describe(
        self,
        actor: Actor,
        name: str,
        expires_at: datetime | None = None,
        *,
        directory: bool = False,
    ) -> WhoAmI:
        """A user's identity, groups, live grants and, on request, the provider's view."""
        return self._queries.describe(actor, name, expires_at, directory=directory)
