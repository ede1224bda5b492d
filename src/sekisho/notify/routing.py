"""Who hears of what: the channels an event is routed to, and the people it concerns, by role.

The model's routes say which channels carry an event (optionally for some templates only).
On a personal channel (e-mail to each person) every person concerned gets a message of their
own, worded for why they hear of it: the role.
"""

from __future__ import annotations

from dataclasses import replace

from sekisho.domain.access import AccessModel, Template
from sekisho.notify.message import Message, Notice
from sekisho.store.tables import GrantRow, RequestRow

APPROVER = "approver"  # asked to decide
REQUESTER = "requester"  # filed it, or is the user it is for
HANDLED = "handled"  # an approver whose decision is no longer needed
HOLDER = "holder"  # holds (or held) the grant
ADMIN = "admin"  # administers sekisho: reports
LOCKER = "locker"  # may place locks: told of every lock
LOCKED = "locked"  # the user a lock is on
ALERTED = "alerted"  # named in a template's emergency.notify: told of every emergency use


def routed(model: AccessModel, event: str, template: str | None) -> bool:
    """Some channel carries `event` (for this template): without one, nothing is written."""
    return bool(model.notifications.routes) and bool(
        model.notifications.channels_for(event, template)
    )


def concerned(row: RequestRow) -> list[str]:
    """The user the request is for, and who filed it (once, if the same)."""
    return list(dict.fromkeys([row.subject, row.requester]))


def holders(row: RequestRow, grant: GrantRow) -> list[str]:
    """Who hears of a grant: its holder, and who asked for it."""
    return list(dict.fromkeys([grant.user, row.requester]))


def waiting_approvers(
    model: AccessModel, template: Template, row: RequestRow, decided: frozenset[str]
) -> list[str]:
    """The waiting level's approvers who may still decide: `decided` holds who already did
    (each person decides once per request); a new request has none, and costs no query."""
    if row.level >= len(template.approval):
        return []
    group = model.group(template.approval[row.level].approvers)
    members = group.members if group else frozenset()
    return sorted(members - decided - {row.requester, row.subject})


def approvers_at(model: AccessModel, template: Template, level: int) -> list[str]:
    """Every approver of one level (0-based), decided or not."""
    group = model.group(template.approval[level].approvers)
    return sorted(group.members) if group else []


def emergency_audience(model: AccessModel, template: Template, row: RequestRow) -> dict[str, str]:
    """Who hears of an emergency use, by role: every approver of every level, then the
    members of the `notify` groups; never the person who used it."""
    found: dict[str, str] = {}
    for level in range(len(template.approval)):
        found.update(dict.fromkeys(approvers_at(model, template, level), APPROVER))
    for name in template.emergency.notify if template.emergency else ():
        group = model.group(name)
        for user in sorted(group.members) if group else ():
            found.setdefault(user, ALERTED)
    for user in (row.requester, row.subject):
        found.pop(user, None)
    return found


def roles(people: dict[str, Message]) -> tuple[tuple[str, str], ...]:
    """(user, role) of each person's message: the channel message lists who it concerns."""
    return tuple((user, message.role) for user, message in people.items())


def to_admins(event: str, message: Message, admins: tuple[str, ...]) -> Notice:
    """A notice for the admins alone (reports, audit checkpoints): about no one request."""
    return to_people(event, message, dict.fromkeys(admins, ADMIN))


def to_people(event: str, message: Message, roles: dict[str, str]) -> Notice:
    """A notice about no one request, for these people in these roles."""
    mine = {user: replace(message, role=role) for user, role in roles.items()}
    broadcast = replace(message, recipients=tuple(roles.items()))
    return Notice(event, None, None, None, broadcast, mine)


def addressed(model: AccessModel, notice: Notice) -> dict[str, Message]:
    """A personal channel's messages by e-mail address: one per address (two people may share
    one), people without an address left out."""
    found: dict[str, Message] = {}
    seen: set[str] = set()
    for user, message in notice.personal.items():
        person = model.user(user)
        address = person.email if person else None
        if address and address.lower() not in seen:
            seen.add(address.lower())
            found[address] = message
    return found
