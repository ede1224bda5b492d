"""An in-memory STS and IAM: the `RoleCredentials` twin for tests, with failures on demand.

It issues keys as STS would (`honours` says whether AWS would still accept them: before
their expiry, before the session policy's end, and not denied by a later revocation), so a
test can check what a person could still do with the credentials they were given.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sekisho.clock import Clock
from sekisho.domain.access import ProviderSettings
from sekisho.domain.credentials import IamRole, RoleSessionAsk, SessionKeys
from sekisho.domain.errors import ProviderFailure


@dataclass(frozen=True)
class Issued:
    ask: RoleSessionAsk
    keys: SessionKeys
    at: datetime


class MemoryRoleCredentials:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self.issued: list[Issued] = []
        self.denials: dict[tuple[str, str], datetime] = {}  # (role name, user) -> cutoff
        self.calls: list[tuple[str, str]] = []  # (operation, role)

    def fail(self, operation: str, times: int = 1) -> None:
        """Make the next `times` calls of `operation` (e.g. "issue") raise ProviderFailure."""
        self._failures[operation] = times

    def issue(self, aws: ProviderSettings, ask: RoleSessionAsk) -> SessionKeys:
        with self._lock:
            self._enter("issue", ask.role_arn)
            now = self._clock.now()
            n = len(self.issued) + 1
            expiry = now + ask.duration
            keys = SessionKeys(f"ASIAMEMORY{n:010d}", f"secret-{n}", f"token-{n}", expiry)
            self.issued.append(Issued(ask, keys, now))
        return keys

    def console_url(self, aws: ProviderSettings, keys: SessionKeys) -> str:
        with self._lock:
            self._enter("console_url", "")
        return f"{aws.federation_url}?Action=login&SigninToken=memory-{keys.access_key_id}"

    def deny_older_sessions(
        self, aws: ProviderSettings, role: IamRole, user: str, cutoff: datetime, now: datetime
    ) -> None:
        with self._lock:
            self._enter("deny_older_sessions", role.name)
            self.denials[(role.name, user)] = cutoff

    def honours(self, keys: SessionKeys, at: datetime) -> bool:
        """Whether AWS would still accept these keys at `at`."""
        with self._lock:
            found = next(i for i in self.issued if i.keys == keys)
        ask = found.ask
        if at >= keys.expiration or (ask.not_after is not None and at > ask.not_after):
            return False
        user = ask.session_name.split("=", 1)[0]
        cutoff = self.denials.get((ask.role_arn.rsplit("/", 1)[-1], user))
        return cutoff is None or found.at >= cutoff

    def _enter(self, operation: str, role: str) -> None:
        self.calls.append((operation, role))
        left = self._failures.get(operation, 0)
        if left:
            self._failures[operation] = left - 1
            raise ProviderFailure(f"{operation} failed: AWS unavailable (injected)")
