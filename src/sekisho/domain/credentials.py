"""Brokered role credentials: what a role session is called and how long it may live. No I/O.

sekisho asks STS for role credentials on a user's behalf (`IssueRoleCredentials`). The session
name carries the user and the request, so CloudTrail and a later revocation can single it
out; the credentials never outlive the grant that allows them: STS will not issue less than
15 minutes, so past the grant's end a session policy denies everything (`not_after`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

STS_MINIMUM = timedelta(minutes=15)  # STS issues no role session shorter than this


def session_name(user: str, request_id: int | None) -> str:
    """`user=reqN`: in CloudTrail and in aws:userid, so a revocation can single it out.

    `=` cannot appear in a user name, so `*:user=*` matches this user's sessions only.
    """
    suffix = f"req{request_id}" if request_id else "standing"
    return f"{user}={suffix}"[:64]


@dataclass(frozen=True)
class RoleSessionAsk:
    """What sekisho asks STS for, for one person."""

    role_arn: str
    session_name: str
    duration: timedelta
    source_identity: str  # the person, whatever the session is called
    not_after: datetime | None = None  # a session policy denies everything after it


@dataclass(frozen=True)
class SessionKeys:
    """The keys STS issued (secrets: never logged, never cached)."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


@dataclass(frozen=True)
class IamRole:
    """A role whose older sessions can be denied, and the role sekisho assumes to do it
    (its account's broker role; None: sekisho's own credentials)."""

    name: str
    broker_role_arn: str | None = None


@dataclass(frozen=True)
class IssuedCredentials:
    """What a person gets back: the keys, which session they are, and why they may have it."""

    role_arn: str
    session_name: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    via: str  # the access decision's reason: "active grant #3 in ProdMemberWorkGroup"
    console_url: str | None = None


def session_length(
    asked: timedelta | None, role_max: timedelta, grant_end: datetime | None, now: datetime
) -> timedelta:
    """As long as asked, at most the role's maximum and the grant's remainder, at least what
    STS issues (the session policy, `not_after`, cuts the rest)."""
    length = min(asked or role_max, role_max)
    if grant_end is not None:
        length = min(length, grant_end - now)
    return max(length, STS_MINIMUM)
