"""What a grant's messages say: access granted, access ends soon, access ended.

The holder (and whoever asked for the grant) hears of each; every message carries the same
facts: which grant, whose, which group, from when until when, and what the group allows.
"""

from __future__ import annotations

from datetime import datetime

from sekisho.domain.access import NotifyEvent
from sekisho.domain.grants import EndReason
from sekisho.domain.timespec import format_duration, iso
from sekisho.notify.message import Notice
from sekisho.notify.routing import HOLDER, holders, roles
from sekisho.notify.wording import Wording, clip
from sekisho.store.tables import GrantRow, RequestRow


def activated(w: Wording, row: RequestRow, grant: GrantRow) -> Notice:
    """Access starts: until when, and how to end it sooner."""
    length = format_duration(grant.end_at - grant.start_at)
    until = w.when(grant.end_at)
    title = f"Access granted: {grant.user} in {grant.group_name} until {until}"
    summary = (
        f"The runbook of request #{row.id} succeeded: {w.who(grant.user)} is in "
        f"{grant.group_name} for {length}, until {until}. Access ends by "
        f"itself then; release it earlier with `sekisho grant release {grant.id}`."
    )
    return _grant_notice(w, NotifyEvent.GRANT_ACTIVATED, row, grant, title, summary)


def ending_soon(w: Wording, row: RequestRow, grant: GrantRow, now: datetime) -> Notice:
    """The reminder before a grant's end: save your work."""
    left = format_duration(grant.end_at - now)
    title = f"Access ends in {left}: {grant.user} in {grant.group_name}"
    summary = (
        f"Grant #{grant.id} of {w.who(grant.user)} in {grant.group_name} ends at "
        f"{w.when(grant.end_at)}, in {left}. Save your work; to keep going, file a "
        "new request."
    )
    return _grant_notice(w, NotifyEvent.GRANT_ENDING_SOON, row, grant, title, summary)


def ended(w: Wording, row: RequestRow, grant: GrantRow, reason: EndReason) -> Notice:
    """Access ended (the grant turned `ending`), and why. Never for a failed runbook's grant:
    it never was access, and the runbook's own message says so."""
    why = {
        EndReason.EXPIRED: f"it reached its end at {w.when(grant.end_at)}",
        EndReason.RELEASED: "the holder released it",
        EndReason.REVOKED: f"{grant.ended_by} revoked it: {clip(grant.end_note or '')}",
        EndReason.REMOVED: f"a remove request ended it ({clip(grant.end_note or '')})",
        EndReason.LOCKED: clip(grant.end_note or "a lock covers it"),  # "locked by ...: why"
    }[reason]
    title = f"Access ended: {grant.user} in {grant.group_name} ({reason.value})"
    summary = (
        f"Grant #{grant.id} of {w.who(grant.user)} in {grant.group_name} ended: {why}. "
        "Need access again? File a new request."
    )
    return _grant_notice(w, NotifyEvent.GRANT_ENDED, row, grant, title, summary)


def _grant_notice(
    w: Wording,
    event: NotifyEvent,
    row: RequestRow,
    grant: GrantRow,
    title: str,
    summary: str,
) -> Notice:
    facts = (
        ("Grant", f"#{grant.id} (request #{row.id}, {row.template})"),
        ("User", w.who(grant.user)),
        ("Group", grant.group_name),
        ("From", w.when(grant.start_at)),
        ("Until", w.when(grant.end_at)),
        *w.gives(grant.group_name),
    )
    mine = {
        user: w.message(row, title, summary, HOLDER, facts=facts, grant_id=grant.id)
        for user in holders(row, grant)
    }
    broadcast = w.message(
        row, title, summary, "", facts=facts, grant_id=grant.id, recipients=roles(mine)
    )
    broadcast.data.update({"grant_status": grant.status, "end_at": iso(grant.end_at)})
    return Notice(event, row.template, row.id, grant.id, broadcast, mine)
