"""Who can reach what, and how: standing membership, or only through an approved request.

`reachability` answers per resource (each role and each target); `people_reach` per person.
`render_reachability` draws both as Rich tables for `sekisho model show`;
`reachability_json` gives the same content for `--json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rich import box
from rich.console import Group as RichGroup
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from sekisho.domain.access import AccessModel, Template, TemplateAction, Verb
from sekisho.domain.timespec import format_duration


@dataclass(frozen=True)
class StandingAccess:
    """A standing group whose members hold the permission all the time."""

    group: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class ApprovalStep:
    approvers: str  # a group name
    min_approvals: int


@dataclass(frozen=True)
class RequestRoute:
    """Joining `work_group` with `template` gives the access; who may ask, who decides."""

    work_group: str
    template: str
    requester_groups: tuple[str, ...]
    requesters: tuple[str, ...]  # the people in requester_groups
    approval: tuple[ApprovalStep, ...]
    auto_approve: bool
    max_duration: timedelta


@dataclass(frozen=True)
class Reach:
    """How one role (`account/role`) or target is reached."""

    verb: Verb  # ASSUME for a role, CONNECT for a target
    resource: str
    account: str | None
    standing: tuple[StandingAccess, ...]
    work_groups: tuple[str, ...]  # work groups whose permissions include it
    routes: tuple[RequestRoute, ...]  # how those work groups get filled

    @property
    def kind(self) -> str:
        return "role" if self.verb is Verb.ASSUME else "target"

    @property
    def standing_users(self) -> tuple[str, ...]:
        return tuple(sorted({u for s in self.standing for u in s.members}))

    @property
    def requesters(self) -> tuple[str, ...]:
        """People who may ask for it (whether or not they also hold it standing)."""
        return tuple(sorted({u for r in self.routes for u in r.requesters}))

    @property
    def only_through_request(self) -> bool:
        """Nobody holds it standing, and a request can give it."""
        return not self.standing_users and bool(self.routes)

    @property
    def unfillable_work_groups(self) -> tuple[str, ...]:
        """Work groups that grant it but that no grant template can fill."""
        filled = {r.work_group for r in self.routes}
        return tuple(g for g in self.work_groups if g not in filled)


@dataclass(frozen=True)
class PersonRoute:
    template: str
    work_group: str
    reaches: tuple[str, ...]  # "assume prod/Prod_MemberRole", "connect prod-admin-console"


@dataclass(frozen=True)
class PersonReach:
    user: str
    display_name: str
    groups: tuple[str, ...]  # standing groups they belong to
    standing: tuple[str, ...]  # "assume dev/Dev_LeaderRole", "connect prod-bastion"
    may_request: tuple[PersonRoute, ...]
    approves: tuple[str, ...]  # template names
    audit: bool
    lock: bool
    admin: bool


def _routes_into(model: AccessModel, work_group: str) -> tuple[RequestRoute, ...]:
    routes = []
    for template in model.templates:
        if template.action is not TemplateAction.GRANT:
            continue
        requester_groups = sorted(
            {
                name
                for rule in template.eligibility
                if work_group in rule.groups
                for name in rule.requesters
            }
        )
        if not requester_groups:
            continue
        people = sorted(
            {u for name in requester_groups if (g := model.group(name)) for u in g.members}
        )
        routes.append(
            RequestRoute(
                work_group=work_group,
                template=template.name,
                requester_groups=tuple(requester_groups),
                requesters=tuple(people),
                approval=tuple(
                    ApprovalStep(a.approvers, a.min_approvals) for a in template.approval
                ),
                auto_approve=template.auto_approve,
                max_duration=template.max_duration,
            )
        )
    return tuple(routes)


def _reach(model: AccessModel, verb: Verb, resource: str, account: str | None) -> Reach:
    allowing = model.groups_allowing(verb, resource)
    standing = tuple(
        StandingAccess(g.name, tuple(sorted(g.members))) for g in allowing if not g.is_work
    )
    work = tuple(g.name for g in allowing if g.is_work)
    routes = tuple(r for name in work for r in _routes_into(model, name))
    return Reach(verb, resource, account, standing, work, routes)


def reachability(model: AccessModel) -> list[Reach]:
    """For every role, then every target, in file order: who reaches it, and how."""
    out = [_reach(model, Verb.ASSUME, role.ref, role.account) for role in model.roles()]
    out += [_reach(model, Verb.CONNECT, t.name, t.account) for t in model.targets]
    return out


def _permission_list(model: AccessModel, group_name: str) -> tuple[str, ...]:
    group = model.group(group_name)
    if group is None:
        return ()
    perms = group.permissions
    refs = [f"assume {r.ref}" for r in model.roles() if r.ref in perms.assume]
    refs += [f"connect {t.name}" for t in model.targets if t.name in perms.connect]
    return tuple(refs)


def _requestable(model: AccessModel, template: Template, mine: set[str]) -> list[PersonRoute]:
    if template.action is not TemplateAction.GRANT:
        return []
    return [
        PersonRoute(template.name, group, _permission_list(model, group))
        for group in sorted(template.requestable_groups(mine))
    ]


def people_reach(model: AccessModel) -> list[PersonReach]:
    """For every user, in file order: what they reach now, and what they may ask for."""
    out = []
    for user in model.users:
        groups = model.standing_groups_of(user.name)
        mine = {g.name for g in groups}
        standing: list[str] = []
        for group in groups:
            standing += [p for p in _permission_list(model, group.name) if p not in standing]
        routes = [r for t in model.templates for r in _requestable(model, t, mine)]
        approves = sorted({t for g in groups for t in g.permissions.approve})
        out.append(
            PersonReach(
                user=user.name,
                display_name=user.display_name,
                groups=tuple(g.name for g in groups),
                standing=tuple(standing),
                may_request=tuple(routes),
                approves=tuple(approves),
                audit=model.is_auditor(user.name),
                lock=model.may_lock(user.name),
                admin=model.is_admin(user.name),
            )
        )
    return out


# --- JSON ----------------------------------------------------------------------------------


def _route_json(route: RequestRoute) -> dict[str, Any]:
    return {
        "work_group": route.work_group,
        "template": route.template,
        "requester_groups": list(route.requester_groups),
        "requesters": list(route.requesters),
        "approval": [
            {"approvers": s.approvers, "min_approvals": s.min_approvals} for s in route.approval
        ],
        "auto_approve": route.auto_approve,
        "max_duration": format_duration(route.max_duration),
    }


def reachability_json(model: AccessModel) -> dict[str, Any]:
    """The content of `render_reachability` as plain JSON-ready data."""
    resources = [
        {
            "kind": reach.kind,
            "resource": reach.resource,
            "account": reach.account,
            "only_through_request": reach.only_through_request,
            "standing": [{"group": s.group, "members": list(s.members)} for s in reach.standing],
            "through_request": [_route_json(r) for r in reach.routes],
            "unfillable_work_groups": list(reach.unfillable_work_groups),
        }
        for reach in reachability(model)
    ]
    people = [
        {
            "user": p.user,
            "display_name": p.display_name,
            "groups": list(p.groups),
            "standing": list(p.standing),
            "may_request": [
                {"template": r.template, "work_group": r.work_group, "reaches": list(r.reaches)}
                for r in p.may_request
            ],
            "approves": list(p.approves),
            "audit": p.audit,
            "lock": p.lock,
            "admin": p.admin,
        }
        for p in people_reach(model)
    ]
    return {"resources": resources, "people": people}


# --- Rich ----------------------------------------------------------------------------------


def _resource_cell(reach: Reach) -> Text:
    text = Text(reach.resource, style="bold")
    text.append(f"\n{reach.kind}", style="dim")
    if reach.only_through_request:
        text.append("  request only", style="yellow")
    elif not reach.standing_users and not reach.routes:
        text.append("  nobody", style="dim")
    return text


def _standing_cell(reach: Reach) -> Text:
    if not reach.standing:
        return Text("-", style="dim")
    text = Text()
    for index, access in enumerate(reach.standing):
        if index:
            text.append("\n")
        text.append(access.group, style="cyan")
        members = ", ".join(access.members) if access.members else "(no members)"
        text.append(f": {members}")
    return text


def _approval_words(route: RequestRoute) -> str:
    if route.auto_approve:
        return "approved automatically"
    steps = [f"{s.min_approvals} of {s.approvers}" for s in route.approval]
    return "approved by " + ", then ".join(steps)


def _request_cell(reach: Reach) -> Text:
    if not reach.work_groups:
        return Text("-", style="dim")
    text = Text()
    for index, route in enumerate(reach.routes):
        if index:
            text.append("\n")
        text.append(route.work_group, style="magenta")
        text.append(" via ")
        text.append(route.template, style="bold")
        text.append(f" (up to {format_duration(route.max_duration)})\n")
        text.append(f"  asked by {', '.join(route.requester_groups)}", style="dim")
        people = ", ".join(route.requesters) if route.requesters else "nobody"
        text.append(f" [{people}]\n", style="dim")
        text.append(f"  {_approval_words(route)}", style="dim")
    for name in reach.unfillable_work_groups:
        if text:
            text.append("\n")
        text.append(name, style="magenta")
        text.append(": no template fills it", style="red")
    return text


def _person_cell(person: PersonReach) -> Text:
    text = Text(person.user, style="bold")
    if person.display_name:
        text.append(f"\n{person.display_name}", style="dim")
    named = (("admin", person.admin), ("audit", person.audit), ("lock", person.lock))
    flags = [f for f, on in named if on]
    if flags:
        text.append(f"\n{' '.join(flags)}", style="red" if person.admin else "blue")
    return text


def _lines(items: tuple[str, ...]) -> Text:
    return Text("\n".join(items)) if items else Text("-", style="dim")


def _may_request_cell(person: PersonReach) -> Text:
    if not person.may_request:
        return Text("-", style="dim")
    text = Text()
    for index, route in enumerate(person.may_request):
        if index:
            text.append("\n")
        text.append(route.work_group, style="magenta")
        text.append(" via ")
        text.append(route.template, style="bold")
        for item in route.reaches:
            text.append(f"\n  {item}", style="yellow")
    return text


def render_reachability(model: AccessModel) -> RenderableType:
    """Two tables: by resource (standing vs. only through a request), and by person."""
    by_resource = Table(
        title="Who reaches what",
        caption="request only: nobody holds it standing; it opens only through an approved "
        "request, for a bounded time",
        box=box.SIMPLE_HEAD,
        show_lines=True,
    )
    by_resource.add_column("Resource", no_wrap=True)
    by_resource.add_column("Standing access")
    by_resource.add_column("Only through an approved request")
    for reach in reachability(model):
        by_resource.add_row(_resource_cell(reach), _standing_cell(reach), _request_cell(reach))

    by_person = Table(title="By person", box=box.SIMPLE_HEAD, show_lines=True)
    by_person.add_column("Person", no_wrap=True)
    by_person.add_column("Standing groups")
    by_person.add_column("Reaches now")
    by_person.add_column("May request")
    by_person.add_column("Approves")
    for person in people_reach(model):
        by_person.add_row(
            _person_cell(person),
            _lines(person.groups),
            _lines(person.standing),
            _may_request_cell(person),
            _lines(person.approves),
        )
    return RichGroup(by_resource, by_person)
