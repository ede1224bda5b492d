"""Domain events: what an operation did, recorded on its unit of work.

An operation records facts, not their consequences. The effect handlers (`sekisho.effects`)
turn each fact into timeline rows, audit entries and outbox messages in the same transaction,
and into bus events published after the commit. Events name ids and carry the values that
were true when they happened (a status, a comment); everything else the handlers read from
the rows in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sekisho.domain.access_decisions import AccessDecision
from sekisho.domain.actor import Actor


@dataclass(frozen=True)
class DomainEvent:
    at: datetime


# -- requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFiled(DomainEvent):
    request_id: int
    actor: Actor
    summary: str  # "member01 in prod-admins for 2h after approval"


@dataclass(frozen=True)
class RequestAutoApproved(DomainEvent):
    request_id: int


@dataclass(frozen=True)
class RequestDecided(DomainEvent):
    """One approver's decision on one level (0-based `level`)."""

    request_id: int
    actor: Actor
    approved: bool
    level: int
    comment: str
    final: bool  # the request left pending_approval with it (approved, or rejected)

    @property
    def verb(self) -> str:
        return "approved" if self.approved else "rejected"


@dataclass(frozen=True)
class RequestCancelled(DomainEvent):
    request_id: int
    actor: Actor


@dataclass(frozen=True)
class RequestExpiredUndecided(DomainEvent):
    request_id: int


# -- notifications -------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantsEndingSoon(DomainEvent):
    """The sweep took these grants' reminders: each holder is told their access ends soon."""

    grant_ids: tuple[int, ...]


@dataclass(frozen=True)
class ReportComposed(DomainEvent):
    """Report lines no report had taken were gathered under `report_key` into one report."""

    source: str  # expiry | reconcile
    report_key: str


# -- production access and role credentials ------------------------------------------------


@dataclass(frozen=True)
class AccessDenied(DomainEvent):
    """A decision said no: `actor` asked whether `decision.user` may reach something."""

    actor: Actor
    decision: AccessDecision


@dataclass(frozen=True)
class CredentialsIssued(DomainEvent):
    """STS issued role credentials to `actor` (the secrets are not part of the fact)."""

    actor: Actor
    role: str  # as the model names it: prod/Prod_MemberRole
    role_arn: str
    session_name: str
    via: str  # the access decision's reason
    expires: datetime
    length: timedelta  # as asked of STS
    grant_id: int | None  # the grant that allowed it (None: standing access)
    request_id: int | None
