"""How the CLI shows things to people: tables, the timeline, times in the local zone.

Everything the server sends is someone else's text: it is shown as literal text (Rich `Text`,
never markup), with control characters spelt out (ESC as `\\x1b`), so a reason or an audit
entry cannot repaint the reader's terminal, hide words or make links. Our own words carry
their style as (text, style) pairs, never as markup in a string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sekisho.domain.text import PROSE_ALLOWED, is_control, visible
from sekisho.domain.timespec import format_duration

# No markup, no emoji codes: a string printed by mistake is still shown as it is.
out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)

Part = str | Text | tuple[str, str]  # someone's text, a finished Text, or (our words, style)


def literal(value: object, style: str = "") -> Text:
    """One line of someone else's text, exactly as it is: no markup, controls spelt out."""
    return Text(visible(str(value)), style=style)


def prose(value: object, style: str = "") -> Text:
    """Someone's paragraphs (a reason, a comment): line breaks and tabs kept, nothing else."""
    return Text(visible(str(value), keep=PROSE_ALLOWED), style=style)


def say(*parts: Part) -> Text:
    """A line from parts: plain strings and (words, style) pairs both shown literally."""
    line = Text()
    for part in parts:
        if isinstance(part, Text):
            line.append_text(part)
        elif isinstance(part, tuple):
            line.append(visible(part[0]), style=part[1])
        else:
            line.append(visible(part))
    return line


STATUS_STYLE = {
    "pending_approval": "yellow",
    "approved": "cyan",
    "scheduled": "cyan",
    "in_progress": "cyan",
    "succeeded": "green",
    "failed": "red bold",
    "rejected": "red",
    "cancelled": "dim",
    "expired_unapproved": "dim",
    "active": "green bold",
    "activating": "cyan",
    "ending": "yellow",
    "expired": "dim",
    "revoked": "magenta",
    "ok": "green",
    "denied": "red",
}


# JSON escapes C0 controls itself; these it leaves raw (DEL, C1, bidi overrides, separators).
_NOT_ASCII_TEXT = re.compile(r"[^\x20-\x7e\n]")


def to_json(data: Any) -> str:
    """JSON whose every control character is a \\u escape: safe to print to a terminal."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return _NOT_ASCII_TEXT.sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    ch = match.group()
    if not is_control(ch):
        return ch
    code = ord(ch)
    if code > 0xFFFF:  # as a surrogate pair, as JSON spells such characters
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def print_json(data: Any) -> None:
    # Plain print: machine output must not be wrapped or styled.
    print(to_json(data))


def emit(data: Any, json: bool, render: Callable[[Any], Any], empty: str | None = None) -> None:
    """JSON for scripts, or the human rendering (or `empty` when there is nothing)."""
    if json:
        print_json(data)
    elif empty is not None and not data:
        out.print(say(empty))
    else:
        shown = render(data)
        out.print(say(shown) if isinstance(shown, str) else shown)


def when(value: str | datetime | None) -> str:
    """A stored UTC time in the reader's local zone, minute precision plus zone name."""
    if value is None:
        return "-"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def until(request: dict[str, Any]) -> str:
    """A request's end, or how long after approval it will be."""
    if request.get("end_at"):
        return when(request["end_at"])
    seconds = request.get("duration_seconds")
    return f"{format_duration(timedelta(seconds=seconds))} after approval" if seconds else "-"


def status(value: str | None) -> Text:
    text = value or "-"
    return literal(text, style=STATUS_STYLE.get(text, ""))


# The command behind each action the server says the reader may take.
NEXT_COMMAND = {
    "approve": "sekisho request approve {id}",
    "reject": "sekisho request reject {id} --comment WHY",
    "cancel": "sekisho request cancel {id}",
    "release": "sekisho grant release {id}",
    "extend": "sekisho grant extend {id} --for DURATION --reason WHY",
    "revoke": "sekisho grant revoke {id} --reason WHY",
    "review": "sekisho request review {id} --comment TEXT",
}

EMERGENCY = ("EMERGENCY", "bold red")  # the badge of a break-glass request, on every view


def allowed(thing: dict[str, Any]) -> Text:
    """What the reader may do to a request or a grant, by name (the server's own answer)."""
    return literal(", ".join(thing.get("allowed_actions") or []) or "-")


def next_steps(r: dict[str, Any]) -> Text:
    """What the reader may do next to a request and its grant, each with its command."""
    steps = [(action, r["id"]) for action in r.get("allowed_actions") or []]
    grant = r.get("grant") or {}
    steps += [(action, grant["id"]) for action in grant.get("allowed_actions") or []]
    if not steps:
        return say(("nothing now", "dim"))
    needs = {"approve": r.get("approve_step_up")}
    return Text("\n").join(_step(a, thing_id, needs.get(a)) for a, thing_id in steps)


def _step(action: str, thing_id: int, needs: str | None = None) -> Text:
    command = NEXT_COMMAND.get(action)
    if command is None:  # an action this client does not know yet: its name alone
        return literal(action)
    line = say(literal(action, "bold"), ": ", literal(command.format(id=int(thing_id))))
    if needs:  # the template's step-up, said before the reader tries
        line.append_text(say(("  (needs ", "dim"), literal(needs, "dim"), (")", "dim")))
    return line


def requests_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Requests", title_justify="left")
    columns = ("ID", "Status", "Template", "User", "Group", "Until", "Requested by", "Reason")
    for column in (*columns, "You may"):
        table.add_column(column, overflow="fold")
    for r in rows:
        state = status(r["status"])
        if r.get("emergency"):
            state = say(EMERGENCY, " ", state)
        table.add_row(
            str(r["id"]),
            state,
            literal(r["template"]),
            literal(r["user"]),
            literal(r["group"]),
            until(r),
            literal(r["requester"]),
            literal((r["reason"] or "")[:60]),
            allowed(r),
        )
    return table


def grants_table(rows: list[dict[str, Any]], *, you_may: bool = False) -> Table:
    """Grants, one a row; `you_may` adds what the reader may do to each."""
    table = Table(title="Grants", title_justify="left")
    columns = ("ID", "Status", "User", "Group", "Start", "End", "Request", "Ended")
    for column in (*columns, "You may") if you_may else columns:
        table.add_column(column, overflow="fold")
    for g in rows:
        ended = "-"
        if g.get("end_reason"):
            ended = f"{g['end_reason']} by {g.get('ended_by') or '?'}"
            if g.get("ended_at"):
                ended += f" at {when(g['ended_at'])}"
        if g.get("last_error"):
            ended += f" (provider: {g['last_error'][:60]})"
        cells: list[str | Text] = [
            str(g["id"]),
            status("active" if g["active"] else g["status"]),
            literal(g["user"]),
            literal(g["group"]),
            when(g["start_at"]),
            when(g["end_at"]),
            f"#{g['request_id']}",
            literal(ended),
        ]
        table.add_row(*cells, *([allowed(g)] if you_may else []))
    return table


def request_detail(r: dict[str, Any]) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Request", literal(f"#{r['id']}  {r['template']} ({r['action']})"))
    head.add_row("Status", status(r["status"]))
    if r.get("emergency"):
        head.add_row("Emergency", emergency_line(r))
    head.add_row("User", literal(f"{r['user']} -> {r['group']}"))
    if r.get("extends_grant_id"):
        head.add_row("Extends", literal(f"grant #{r['extends_grant_id']} (new end below)"))
    head.add_row("Requested by", literal(f"{r['requester']} at {when(r['created_at'])}"))
    if r.get("start_at"):
        head.add_row("Start", when(r["start_at"]))
    if r.get("end_at") or r.get("duration_seconds"):
        head.add_row("Until", until(r))
    head.add_row("Reason", prose(r["reason"]))
    for key, value in (r.get("change_info") or {}).items():
        head.add_row(literal(f"  {key}"), prose(value))
    for key, value in (r.get("params") or {}).items():
        head.add_row(literal(f"  {key}"), literal(value))
    if r["status"] == "pending_approval":
        head.add_row("Decide by", when(r["decide_by"]))
    head.add_row("You may", next_steps(r))

    levels = Table(title="Approval", title_justify="left", show_edge=False)
    for column in ("Level", "Approvers", "Needed", "Approved", "State"):
        levels.add_column(column)
    for level in r.get("levels", []):
        levels.add_row(
            str(level["level"]),
            literal(level["approvers"]),
            str(level["min_approvals"]),
            str(level["approvals"]),
            status(level["state"]),
        )
    parts: list[Any] = [Panel(head, expand=False), levels, timeline(r.get("timeline", []))]
    grant = r.get("grant")
    if grant:
        parts.append(grants_table([grant]))
    return Group(*parts)


def emergency_line(r: dict[str, Any]) -> Text:
    """The badge, and where the post-incident review stands."""
    line = say(EMERGENCY, ": granted at once without an approver; ")
    if r.get("reviewed_at"):
        reviewer = r.get("reviewed_by") or "?"
        line.append_text(say(f"reviewed by {reviewer} at {when(r['reviewed_at'])}: "))
        line.append_text(prose(r.get("review_comment") or ""))
    elif r.get("review_overdue"):
        line.append_text(say(("review OVERDUE", "bold red"), f" since {when(r['review_due_at'])}"))
    else:
        line.append_text(say(f"review due by {when(r.get('review_due_at'))}"))
    return line


def emergencies_table(rows: list[dict[str, Any]]) -> Table:
    """Emergency use per person, for auditors."""
    table = Table(title="Emergency use", title_justify="left")
    for column in ("User", "Uses", "Reviewed", "Awaiting review", "Overdue", "Last used"):
        table.add_column(column, overflow="fold")
    for c in rows:
        overdue = literal(str(c["overdue"]), "bold red" if c["overdue"] else "")
        table.add_row(
            literal(c["user"]),
            str(c["uses"]),
            str(c["reviewed"]),
            str(c["awaiting_review"]),
            overdue,
            when(c["last_used_at"]),
        )
    return table


def timeline(entries: list[dict[str, Any]]) -> Table:
    """The request's steps top to bottom, like Change Manager's timeline."""
    table = Table(title="Timeline", title_justify="left", show_header=False, show_edge=False)
    table.add_column(width=1)
    table.add_column(no_wrap=True)
    table.add_column()
    table.add_column()
    for index, entry in enumerate(entries):
        ok = entry["status"] == "ok"
        mark = Text("●" if ok else "✗", style="green" if ok else "red bold")
        last = index == len(entries) - 1
        table.add_row(
            mark,
            when(entry["at"]),
            literal(entry["actor"], style="bold"),
            prose(entry["message"], style="" if ok else "red"),
        )
        if not last:
            table.add_row(Text("│", style="dim"), "", "", "")
    return table


def audit_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Audit trail (newest first)", title_justify="left")
    for column in ("#", "Time", "Action", "Outcome", "Actor", "User", "Req", "Node", "Detail"):
        table.add_column(column, overflow="fold")
    for e in rows:
        detail = ", ".join(
            f"{k}={v}" for k, v in sorted(e["detail"].items()) if v not in (None, "")
        )
        if e.get("object"):
            detail = f"{e['object']}; {detail}" if detail else e["object"]
        table.add_row(
            str(e["seq"]),
            when(e["at"]),
            literal(e["action"]),
            status(e["outcome"]),
            literal(e["actor"]),
            literal(e.get("subject") or "-"),
            str(e["request_id"]) if e.get("request_id") else "-",
            literal(e.get("node") or "-"),
            literal(visible(detail)[:160]),
        )
    return table
