"""Grants: user x group x [start, end). The one place that says whether a grant is active."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sekisho.domain.errors import Conflict, Forbidden


class GrantStatus(StrEnum):
    ACTIVATING = "activating"  # the runbook is making it real; not yet usable
    ACTIVE = "active"
    ENDING = "ending"  # its end arrived; the provider has not yet confirmed the removal
    EXPIRED = "expired"  # ended at its end time
    REVOKED = "revoked"  # ended early: released, revoked, or a remove request
    FAILED = "failed"  # the runbook failed; never became usable


class EndReason(StrEnum):
    EXPIRED = "expired"
    RELEASED = "released"  # the holder said "I'm done"
    REVOKED = "revoked"  # an admin
    REMOVED = "removed"  # a RemoveUserFromGroup request
    FAILED = "failed"  # its runbook failed: what the run added is being undone
    LOCKED = "locked"  # a lock covers it (`domain.locks`)


ENDED = frozenset({GrantStatus.EXPIRED, GrantStatus.REVOKED, GrantStatus.FAILED})


_G = GrantStatus
TRANSITIONS: dict[GrantStatus, frozenset[GrantStatus]] = {
    # Its run confirmed the membership; or the run failed and what it added is being undone.
    _G.ACTIVATING: frozenset({_G.ACTIVE, _G.ENDING}),
    _G.ACTIVE: frozenset({_G.ENDING}),
    # The provider confirmed the removal.
    _G.ENDING: frozenset({_G.EXPIRED, _G.REVOKED, _G.FAILED}),
}


def check_transition(current: GrantStatus, new: GrantStatus) -> None:
    if new not in TRANSITIONS.get(current, frozenset()):
        raise Conflict(f"a grant that is {current.value} cannot become {new.value}")


def check_ending(current: GrantStatus, reason: EndReason) -> None:
    """Whether a grant may start ending for `reason`: a usable one for any reason, one that
    never became usable only to undo its failed run."""
    check_transition(current, GrantStatus.ENDING)
    if current not in ending_from(reason):
        raise Conflict(f"a grant that is still {current.value} cannot end as {reason.value}")


def ending_from(reason: EndReason) -> tuple[GrantStatus, ...]:
    """The statuses a grant may start ending from for `reason`: a bulk ending filters on
    them, `check_ending` asks them of one grant."""
    if reason is EndReason.FAILED:
        return (GrantStatus.ACTIVE, GrantStatus.ACTIVATING)
    return (GrantStatus.ACTIVE,)


def ended_status(reason: EndReason) -> GrantStatus:
    """Where an `ending` grant lands once the provider confirmed the removal."""
    if reason is EndReason.EXPIRED:
        return GrantStatus.EXPIRED
    if reason is EndReason.FAILED:
        return GrantStatus.FAILED  # it never became usable
    return GrantStatus.REVOKED


@dataclass(frozen=True)
class GrantWindow:
    """The part of a grant that decides whether it is usable."""

    id: int
    user: str
    group: str
    status: GrantStatus
    start_at: datetime
    end_at: datetime


@dataclass(frozen=True)
class EndingGrant:
    """A grant on its way out, as the events of its ending tell it: enough for the timeline,
    the audit, the report and the bus without reading the grant again (a sweep ends 10,000
    at once). `status` is `ending`, or where the grant landed once the provider answered."""

    id: int
    request_id: int
    user: str
    group: str
    end_at: datetime
    reason: EndReason  # the first reason it started ending for (a retry keeps it)
    note: str
    status: GrantStatus = GrantStatus.ENDING
    attempts: int = 0  # removals the provider did not confirm so far
    last_error: str | None = None


def is_active(grant: GrantWindow, at: datetime) -> bool:
    """Usable at `at`: activated, not ended, and `at` inside [start, end).

    The end bound is checked here as well as by the expiry scheduler, so access stops at the
    end instant even when the scheduler is late, down, or on another node.
    """
    return grant.status is GrantStatus.ACTIVE and grant.start_at <= at < grant.end_at


def holds_membership(grant: GrantWindow, at: datetime) -> bool:
    """Whether the provider should keep the user in the group for this grant.

    An activating grant counts too: its runbook has added (or is adding) the member, and ending
    an overlapping grant must not pull the membership out from under it.
    """
    live = grant.status in (GrantStatus.ACTIVE, GrantStatus.ACTIVATING)
    return live and at < grant.end_at


def membership_end(grants: Iterable[GrantWindow], at: datetime) -> datetime | None:
    """When the user's membership should end given all their grants for one group.

    Overlapping grants never cut each other: access lasts until the last one ends.
    None means no grant holds the membership any more: remove it.
    """
    ends = [g.end_at for g in grants if holds_membership(g, at)]
    return max(ends) if ends else None


# -- who may end a grant early -----------------------------------------------------------------
# The rules ReleaseGrant and RevokeGrant enforce, and the views' `allowed_actions` ask ahead.
# Ending early needs a grant usable now (`is_active`): one `ending` is over already, one past
# its end waits only for the sweeper, one still activating is not usable yet.


def check_endable(grant: GrantWindow, now: datetime) -> None:
    if not is_active(grant, now):
        raise Conflict(f"grant #{grant.id} is {grant.status.value}, not active")


def check_release(grant: GrantWindow, releaser: str, now: datetime) -> None:
    """Only the holder releases their own grant (admins revoke)."""
    check_endable(grant, now)
    if releaser != grant.user:
        raise Forbidden("only the holder may release a grant; admins revoke")


def may_release(grant: GrantWindow, releaser: str, now: datetime) -> bool:
    """`check_release`, asked ahead."""
    return releaser == grant.user and is_active(grant, now)


def may_revoke(grant: GrantWindow, admin: bool, now: datetime) -> bool:
    """What RevokeGrant checks (sekisho's admins only, a grant usable now), asked ahead."""
    return admin and is_active(grant, now)
