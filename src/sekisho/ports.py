"""Ports: the small record of what the outside world is, handed to every operation.

Each port is a small interface with a twin for tests: the store (units of work over SQLite or
PostgreSQL), the clock (`ManualClock`), the bus, the provider (`MemoryProvider`), STS and IAM
for role credentials (`MemoryRoleCredentials`), and the model source. Operations take the
ports they use and nothing else; `bootstrap` builds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel, JiraSettings, ProviderSettings
from sekisho.domain.credentials import IamRole, RoleSessionAsk, SessionKeys
from sekisho.domain.tickets import IssueState


class ModelSource(Protocol):
    """The access model in force, read in the caller's transaction (cached by version)."""

    def current(self, session: Session | Connection | None = None) -> tuple[int, AccessModel]:
        """The version's id and the model."""
        ...

    def model(self, session: Session | Connection | None = None) -> AccessModel: ...

    def one_version(self) -> AbstractContextManager[None]:
        """Everything inside (one operation, however many transactions) decides under one
        version, asked of the store once."""
        ...


# -- grants (the grant lifecycle: runbooks, endings, the sweep, the reconciler) ---------------


class MembershipLocks(Protocol):
    """One membership change at a time per (user, group), across nodes on PostgreSQL
    (`services.membership_locks.DatabaseLocks`; `ProcessLocks` within one process)."""

    def hold(self, user: str, group: str) -> AbstractContextManager[None]: ...

    def hold_all(self, pairs: Iterable[tuple[str, str]]) -> AbstractContextManager[None]:
        """Every pair's lock at once (a batch), taken in one order."""
        ...


# Deny `user`'s role sessions of `group`'s roles issued before `cutoff` (AWS); what was done.
RevokeRoleSessions = Callable[[str, str, datetime], list[str]]
# A role is locked: deny these users' sessions of that one role issued before the cutoff.
DenyRoleSessions = Callable[[str, Sequence[str], datetime], list[str]]


class NotifyJobs(Protocol):
    """The outbox's own work the sweep and the reconciler start, each in its transaction."""

    def send_reminders(self) -> list[int]:
        """Write the reminders that are due; return their grants."""
        ...

    def compose_reports(self) -> int:
        """Gather the report lines into one message per source; how many were written."""
        ...

    def next_reminder(self, s: Session) -> datetime | None: ...


class RoleCredentials(Protocol):
    """STS and IAM, for brokered switch-role: `AwsRoleCredentials` (boto3), or the twin.

    `aws` is the model's provider settings (region, endpoint, sekisho's own role), passed on
    every call because a model reload may change them. Each call raises `ProviderFailure`
    when AWS did not confirm, never reports done before it did.
    """

    def issue(self, aws: ProviderSettings, ask: RoleSessionAsk) -> SessionKeys:
        """Role credentials for one person, as asked (`ask.not_after` as a session policy)."""
        ...

    def console_url(self, aws: ProviderSettings, keys: SessionKeys) -> str:
        """A console sign-in URL for these keys (the AWS federation endpoint)."""
        ...

    def deny_older_sessions(
        self, aws: ProviderSettings, role: IamRole, user: str, cutoff: datetime, now: datetime
    ) -> None:
        """Deny `user`'s sessions of `role` issued before `cutoff` ("revoke older sessions",
        scoped to the one user); denials that can no longer matter at `now` may go."""
        ...


# -- tickets -------------------------------------------------------------------------------


class Tickets(Protocol):
    """The company's ticket system, asked about one issue before a request that names it is
    filed (`tickets/jira.py`)."""

    def state(self, settings: JiraSettings, key: str) -> IssueState | None:
        """The issue's state; None if there is no such issue (or sekisho may not see it);
        TicketsUnavailable if the system cannot say now."""
        ...
