"""Extensions: more time on a grant, asked as a request linked to it. Pure: no store, no clock.

An extension is filed with the grant's template and decided by that template's rules: the
holder's self-service allowance (`Template.extend`), else its approval levels. Whatever the
route, the grant's whole span, from its start to the new end, stays within the template's
`max_duration`. Its approval moves the grant's end in the approval's own transaction; it must
come before the current end passes (the request's deadline is that end), so access never
lapses between the old end and the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sekisho.domain import timespec
from sekisho.domain.access import Template
from sekisho.domain.errors import Conflict, InvalidInput
from sekisho.domain.grants import GrantWindow, is_active
from sekisho.domain.text import LONG_TEXT, check_text
from sekisho.domain.timespec import format_duration, iso


@dataclass(frozen=True)
class ExtensionDraft:
    """An extension as a person typed it: exactly one of `duration` (added to the current
    end) and `until` (the new end), and why."""

    reason: str
    until: str | None = None
    duration: str | None = None


@dataclass(frozen=True)
class SoFar:
    """The extensions of one grant already in force (self-service or approved)."""

    times: int
    added: timedelta


@dataclass(frozen=True)
class ReadExtension:
    new_end: datetime
    added: timedelta
    reason: str
    # Why nobody needs to approve it ("self-service extension 1 of 2"); None: the template's
    # approval levels decide it.
    self_service: str | None

    @property
    def summary(self) -> str:
        return f"more time, until {iso(self.new_end)} (+{format_duration(self.added)})"


def check_extendable(grant: GrantWindow, now: datetime) -> None:
    """Only a grant usable now is extended: one `ending` or past its end is over already."""
    if not is_active(grant, now):
        why = "its end has passed" if grant.end_at <= now else f"it is {grant.status.value}"
        raise Conflict(f"grant #{grant.id} cannot be extended: {why}; request access anew")


def may_extend(grant: GrantWindow, viewer: str, admin: bool, now: datetime) -> bool:
    """Whether `viewer` may ask to extend the grant (its holder, or an admin), asked ahead."""
    return (viewer == grant.user or admin) and is_active(grant, now)


def read_extension(
    template: Template,
    grant: GrantWindow,
    draft: ExtensionDraft,
    so_far: SoFar,
    tz: ZoneInfo,
) -> ReadExtension:
    """Check `draft` against the grant and its template; InvalidInput names each rule."""
    new_end, field_name = _new_end(grant, draft, tz)
    check_whole_span(template, grant, new_end, field_name)
    reason = check_text("reason", draft.reason, max_length=LONG_TEXT, multiline=True)
    if not reason:
        raise InvalidInput.one("reason", "required", "say why you need more time")
    added = new_end - grant.end_at
    route = _self_service(template, so_far, added, field_name)
    return ReadExtension(new_end, added, reason, route)


def check_whole_span(template: Template, grant: GrantWindow, new_end: datetime, field: str) -> None:
    """The template's maximum counts the whole grant, from its start to the new end."""
    span = new_end - grant.start_at
    if span > template.max_duration:
        limit = format_duration(template.max_duration)
        raise InvalidInput.one(
            field,
            "max_duration",
            f"{template.name} grants at most {limit}, counted from the grant's start at "
            f"{iso(grant.start_at)}; until {iso(new_end)} grant #{grant.id} would last "
            f"{format_duration(span)} (the latest end is "
            f"{iso(grant.start_at + template.max_duration)})",
        )


def _new_end(grant: GrantWindow, draft: ExtensionDraft, tz: ZoneInfo) -> tuple[datetime, str]:
    if bool(draft.until) == bool(draft.duration):
        raise InvalidInput.one(
            "until", "one_of_until_or_for", "give exactly one of --until TIME or --for DURATION"
        )
    if draft.duration:
        return grant.end_at + timespec.parse_duration(draft.duration, "for"), "for"
    new_end = timespec.parse_instant(draft.until or "", "until", tz)
    if new_end <= grant.end_at:
        raise InvalidInput.one(
            "until",
            "after_current_end",
            f"the new end {iso(new_end)} is not after the grant's current end {iso(grant.end_at)}",
        )
    return new_end, "until"


def _self_service(template: Template, so_far: SoFar, added: timedelta, field: str) -> str | None:
    """Why the extension needs nobody's approval, or None when the approvers decide it.

    A template whose requests are approved automatically has nobody to ask: beyond its
    `extend` allowance, the extension is refused rather than sent to approvers it lacks.
    """
    rule = template.extend
    if rule is None:
        return "auto-approved by template" if template.auto_approve else None
    times, total = so_far.times + 1, so_far.added + added
    if times <= rule.times and total <= rule.total:
        return (
            f"self-service extension {times} of {rule.times} "
            f"({format_duration(total)} of {format_duration(rule.total)} added)"
        )
    if not template.auto_approve:
        return None
    if times > rule.times:
        raise InvalidInput.one(
            field,
            "extend_times",
            f"{template.name} allows {rule.times} extension(s) of a grant and this one has had "
            f"{so_far.times}; request access anew",
        )
    left = max(rule.total - so_far.added, timedelta(0))
    raise InvalidInput.one(
        field,
        "extend_total",
        f"{template.name} allows extensions adding {format_duration(rule.total)} in all; "
        f"{format_duration(so_far.added)} added so far, so at most {format_duration(left)} more"
        if left
        else f"{template.name} allows extensions adding {format_duration(rule.total)} in all, "
        "all of it used; request access anew",
    )
