"""A picture of the access model, drawn from the loaded model as inline SVG.

Four columns, left to right: people, the standing groups they belong to, the work groups a
request can put them in, and the roles and targets (by account) those groups reach. Solid
lines are standing access; dashed lines are "may ask for it", dotted lines "approves it";
resources reached only through an approved request are marked, so who can enter
production, and how, shows at a glance. The page lists the same facts as tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sekisho.domain.access import AccessModel, Group, TemplateAction
from sekisho.domain.timespec import format_duration
from sekisho.model.reach import Reach, reachability

COLUMNS = (
    ("People", 20, 170),
    ("Standing groups", 250, 200),
    ("Work groups", 520, 220),
    ("Roles and targets", 820, 250),
)
TOP = 56  # below the column headings
ROW = 46
BOX = 36
HEADING = 26  # an account's heading in the last column
CHAR = 7.4  # average width of a label character at the picture's font size


@dataclass(frozen=True)
class Node:
    key: str
    label: str
    sub: str
    x: float
    y: float
    w: float
    kind: str  # person | standing | work | resource
    marks: tuple[str, ...] = ()  # css classes: approval-only, standing-access, unreached

    @property
    def h(self) -> float:
        return BOX

    @property
    def short_label(self) -> str:
        return _fit(self.label, self.w - 16, CHAR)

    @property
    def short_sub(self) -> str:
        return _fit(self.sub, self.w - 16, CHAR * 0.85)


@dataclass(frozen=True)
class Edge:
    path: str
    kind: str  # member | standing | request | approves | grants
    title: str


@dataclass(frozen=True)
class Heading:
    x: float
    y: float
    text: str


@dataclass
class Picture:
    width: float
    height: float
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    headings: list[Heading] = field(default_factory=list)


def _fit(text: str, width: float, per_char: float) -> str:
    room = max(4, int(width / per_char))
    return text if len(text) <= room else text[: room - 1] + "\u2026"


def _curve(a: Node, b: Node) -> str:
    x1, y1 = a.x + a.w, a.y + BOX / 2
    x2, y2 = b.x, b.y + BOX / 2
    bend = (x2 - x1) / 2
    return (
        f"M{x1:.0f} {y1:.0f} C{x1 + bend:.0f} {y1:.0f} {x2 - bend:.0f} {y2:.0f} {x2:.0f} {y2:.0f}"
    )


def _group_sub(group: Group) -> str:
    perms = group.permissions
    said = []
    if perms.admin:
        said.append("admin")
    if perms.audit:
        said.append("audit")
    if perms.approve:
        said.append("approves " + ", ".join(sorted(perms.approve)))
    reach = len(perms.assume) + len(perms.connect)
    if reach:
        said.append(f"reaches {reach}")
    return " \u00b7 ".join(said) or f"{len(group.members)} members"


def _work_sub(model: AccessModel, group: Group) -> str:
    routes = [
        t
        for t in model.templates
        if t.action is TemplateAction.GRANT
        and any(group.name in rule.groups for rule in t.eligibility)
    ]
    if not routes:
        return "no template fills it"
    t = routes[0]
    return f"via {t.name}, up to {format_duration(t.max_duration)}"


def _resource_marks(reach: Reach) -> tuple[str, ...]:
    if reach.only_through_request:
        return ("approval-only",)
    if reach.standing_users:
        return ("standing-access",)
    return ("unreached",)


def _resource_sub(reach: Reach) -> str:
    kind = reach.kind
    if reach.only_through_request:
        return f"{kind} \u00b7 only with approval"
    if reach.standing_users:
        extra = " (or by request)" if reach.routes else ""
        return f"{kind} \u00b7 standing{extra}"
    return f"{kind} \u00b7 nobody"


# A row of the resource column: (node key, label, None), or ("", "", heading) for an account.
ResourceRow = tuple[str, str, str | None]


def draw(model: AccessModel) -> Picture:
    (_, px, pw), (_, sx, sw), (_, wx, ww), (_, rx, rw) = COLUMNS
    people = [(u.name, u.display_name) for u in model.users]
    standing = [g for g in model.groups if not g.is_work]
    work = [g for g in model.groups if g.is_work]
    resource_rows = _resource_rows(model)
    resource_height = sum(HEADING if h else ROW for _, _, h in resource_rows)
    height = max(len(people) * ROW, len(standing) * ROW, len(work) * ROW, resource_height)
    picture = Picture(width=rx + rw + 20, height=TOP + height + 16)
    for title, x, _ in COLUMNS:
        picture.headings.append(Heading(x, 30, title))

    def column_top(count: int) -> float:
        return TOP + (height - count * ROW) / 2  # centred in the tallest column

    nodes: dict[str, Node] = {}
    top = column_top(len(people))
    for index, (name, display) in enumerate(people):
        marks = tuple(m for m, on in (("admin", model.is_admin(name)),) if on)
        nodes[f"person:{name}"] = Node(
            f"person:{name}", name, display or "", px, top + index * ROW, pw, "person", marks
        )
    top = column_top(len(standing))
    for index, group in enumerate(standing):
        sub = _group_sub(group)
        nodes[f"group:{group.name}"] = _group_node(
            group, sub, sx, top + index * ROW, sw, "standing"
        )
    top = column_top(len(work))
    for index, group in enumerate(work):
        sub = _work_sub(model, group)
        nodes[f"group:{group.name}"] = _group_node(group, sub, wx, top + index * ROW, ww, "work")
    y = TOP + (height - resource_height) / 2
    nodes.update(_resource_nodes(model, resource_rows, picture, y))
    picture.nodes = list(nodes.values())
    picture.edges = _edges(model, nodes)
    return picture


def _group_node(group: Group, sub: str, x: float, y: float, w: float, kind: str) -> Node:
    return Node(f"group:{group.name}", group.name, sub, x, y, w, kind)


def _resource_rows(model: AccessModel) -> list[ResourceRow]:
    """The resource column, by account, each with its heading; targets of no account last."""
    rows: list[ResourceRow] = []
    for account in model.accounts:
        items = [("assume", r.ref) for r in account.roles]
        items += [("connect", t.name) for t in model.targets if t.account == account.name]
        if not items:
            continue
        number = f" ({account.aws_account_id})" if account.aws_account_id else ""
        rows.append(("", "", f"account {account.name}{number}"))
        rows += [(f"{verb}:{obj}", obj, None) for verb, obj in items]
    loose = [t for t in model.targets if t.account is None or model.account(t.account) is None]
    if loose:
        rows.append(("", "", "targets"))
        rows += [(f"connect:{t.name}", t.name, None) for t in loose]
    return rows


def _resource_nodes(
    model: AccessModel, rows: list[ResourceRow], picture: Picture, y: float
) -> dict[str, Node]:
    """The resource column's nodes from `y` down; its account headings go on the picture."""
    (_, rx, rw) = COLUMNS[3]
    reaches = {(r.verb.value, r.resource): r for r in reachability(model)}
    nodes: dict[str, Node] = {}
    for key, label, heading in rows:
        if heading is not None:
            picture.headings.append(Heading(rx, y + HEADING - 8, heading))
            y += HEADING
            continue
        verb, _, obj = key.partition(":")
        reach = reaches[(verb, obj)]
        nodes[key] = Node(
            key, label, _resource_sub(reach), rx, y, rw, "resource", _resource_marks(reach)
        )
        y += ROW
    return nodes


def _edges(model: AccessModel, nodes: dict[str, Node]) -> list[Edge]:
    edges: list[Edge] = []
    drawn: set[tuple[str, str, str]] = set()

    def link(a: str, b: str, kind: str, title: str) -> None:
        if a in nodes and b in nodes and (a, b, kind) not in drawn:
            drawn.add((a, b, kind))
            edges.append(Edge(_curve(nodes[a], nodes[b]), kind, title))

    for group in model.groups:
        here = f"group:{group.name}"
        if not group.is_work:
            for member in sorted(group.members):
                link(f"person:{member}", here, "member", f"{member} is in {group.name}")
        kind = "grants" if group.is_work else "standing"
        how = "while a grant holds" if group.is_work else "at any time"
        perms = group.permissions
        for ref in sorted(perms.assume):
            link(here, f"assume:{ref}", kind, f"{group.name} may assume {ref} {how}")
        for target in sorted(perms.connect):
            link(here, f"connect:{target}", kind, f"{group.name} may connect to {target} {how}")
    for template in model.templates:
        if template.action is not TemplateAction.GRANT:
            continue
        for rule in template.eligibility:
            for asker in sorted(rule.requesters):
                for work in sorted(rule.groups):
                    link(
                        f"group:{asker}",
                        f"group:{work}",
                        "request",
                        f"{asker} may ask for {work} with {template.name}",
                    )
        for level in template.approval:
            for work in sorted({g for rule in template.eligibility for g in rule.groups}):
                link(
                    f"group:{level.approvers}",
                    f"group:{work}",
                    "approves",
                    f"{level.approvers} approves {template.name} requests for {work}",
                )
    return edges
