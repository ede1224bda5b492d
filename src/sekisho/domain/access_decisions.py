"""May USER assume ROLE / connect TARGET now? Deny by default, and always say why."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sekisho.domain.access import AccessModel, Group, TemplateAction, Verb
from sekisho.domain.grants import GrantWindow, is_active
from sekisho.domain.locks import Lock, LockKind, lock_of_access


@dataclass(frozen=True)
class AccessRoute:
    """A way to obtain access that the user does not have now."""

    template: str
    group: str


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    user: str
    verb: Verb
    object: str
    reason: str
    group: str | None = None  # the group whose permission allows it
    grant_id: int | None = None  # set when access comes from an active grant
    grant_end: datetime | None = None
    standing: bool = False
    routes: tuple[AccessRoute, ...] = ()  # when denied: templates that would give access
    lock_id: int | None = None  # when denied by a lock: which one


def decide_access(
    model: AccessModel,
    user: str,
    verb: Verb,
    obj: str,
    grants: Iterable[GrantWindow],
    at: datetime,
    locks: Sequence[Lock] = (),
) -> AccessDecision:
    """The decision, locks first: a lock in force on the user or the object denies with its
    reason; a locked group's permissions count for nothing."""

    def deny(reason: str, routes: tuple[AccessRoute, ...] = ()) -> AccessDecision:
        return AccessDecision(False, user, verb, obj, reason, routes=routes)

    if model.user(user) is None:
        return deny(f"unknown user {user!r}")
    if not model.exists(verb, obj):
        noun = "role" if verb is Verb.ASSUME else "target"
        return deny(f"unknown {noun} {obj!r}")
    in_force = [lock for lock in locks if lock.in_force(at)]
    lock = lock_of_access(in_force, user, verb, obj)
    if lock is not None:
        return AccessDecision(False, user, verb, obj, lock.message, lock_id=lock.id)
    locked = {k.subject: k for k in in_force if k.kind is LockKind.GROUP}
    allowing = model.groups_allowing(verb, obj)
    usable = tuple(g for g in allowing if g.name not in locked)
    decision = _decide_by_groups(model, user, verb, obj, grants, at, usable)
    if not decision.allowed:
        held = _locked_group_held(user, allowing, grants, at, locked)
        if held is not None:
            return AccessDecision(False, user, verb, obj, held.message, lock_id=held.id)
    return decision


def _decide_by_groups(
    model: AccessModel,
    user: str,
    verb: Verb,
    obj: str,
    grants: Iterable[GrantWindow],
    at: datetime,
    allowing: tuple[Group, ...],
) -> AccessDecision:
    def deny(reason: str, routes: tuple[AccessRoute, ...] = ()) -> AccessDecision:
        return AccessDecision(False, user, verb, obj, reason, routes=routes)

    for group in allowing:
        if not group.is_work and user in group.members:
            return AccessDecision(
                True, user, verb, obj, f"standing member of {group.name}", group.name, standing=True
            )

    allowing_work = {g.name for g in allowing if g.is_work}
    live = [g for g in grants if g.user == user and g.group in allowing_work and is_active(g, at)]
    if live:
        best = max(live, key=lambda g: g.end_at)
        return AccessDecision(
            True,
            user,
            verb,
            obj,
            f"active grant #{best.id} in {best.group}",
            best.group,
            grant_id=best.id,
            grant_end=best.end_at,
        )

    routes = routes_to(model, user, allowing_work)
    if routes:
        hint = ", ".join(f"{r.template} for {r.group}" for r in routes)
        return deny(f"no active grant; a request would give access: {hint}", routes)
    if allowing_work:
        return deny("no active grant, and no template lets this user request a group that has it")
    return deny(f"no group may {verb.value} {obj}")


def _locked_group_held(
    user: str,
    allowing: tuple[Group, ...],
    grants: Iterable[GrantWindow],
    at: datetime,
    locked: dict[str, Lock],
) -> Lock | None:
    """The lock on a group that would have allowed `user` (a member, or a grant in it)."""
    for group in allowing:
        lock = locked.get(group.name)
        if lock is None:
            continue
        if user in group.members or any(
            g.user == user and g.group == group.name and is_active(g, at) for g in grants
        ):
            return lock
    return None


def routes_to(model: AccessModel, user: str, groups: set[str]) -> tuple[AccessRoute, ...]:
    """Templates with which `user` may request one of `groups`."""
    mine = {g.name for g in model.standing_groups_of(user)}
    found = []
    for template in model.templates:
        if template.action is not TemplateAction.GRANT:
            continue
        for group in sorted(template.requestable_groups(mine) & groups):
            found.append(AccessRoute(template.name, group))
    return tuple(found)
