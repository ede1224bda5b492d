"""How the CLI shows things to people: tables, the timeline, times in the local zone."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sekisho.domain.timespec import format_duration

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

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


def print_json(data: Any) -> None:
    # Plain print: machine output must not be wrapped or styled.
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def emit(data: Any, json: bool, render: Callable[[Any], Any], empty: str | None = None) -> None:
    """JSON for scripts, or the human rendering (or `empty` when there is nothing)."""
    if json:
        print_json(data)
    elif empty is not None and not data:
        out.print(empty)
    else:
        out.print(render(data))


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
    return Text(text, style=STATUS_STYLE.get(text, ""))


def requests_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Requests", title_justify="left")
    for column in ("ID", "Status", "Template", "User", "Group", "Until", "Requested by", "Reason"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["id"]),
            status(r["status"]),
            r["template"],
            r["user"],
            r["group"],
            until(r),
            r["requester"],
            (r["reason"] or "")[:60],
        )
    return table


def grants_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Grants", title_justify="left")
    for column in ("ID", "Status", "User", "Group", "Start", "End", "Request", "Ended"):
        table.add_column(column, overflow="fold")
    for g in rows:
        ended = "-"
        if g.get("end_reason"):
            ended = f"{g['end_reason']} by {g.get('ended_by') or '?'}"
            if g.get("ended_at"):
                ended += f" at {when(g['ended_at'])}"
        if g.get("last_error"):
            ended += f" (provider: {g['last_error'][:60]})"
        table.add_row(
            str(g["id"]),
            status("active" if g["active"] else g["status"]),
            g["user"],
            g["group"],
            when(g["start_at"]),
            when(g["end_at"]),
            f"#{g['request_id']}",
            ended,
        )
    return table


def request_detail(r: dict[str, Any]) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Request", f"#{r['id']}  {r['template']} ({r['action']})")
    head.add_row("Status", status(r["status"]))
    head.add_row("User", f"{r['user']} -> {r['group']}")
    head.add_row("Requested by", f"{r['requester']} at {when(r['created_at'])}")
    if r.get("start_at"):
        head.add_row("Start", when(r["start_at"]))
    if r.get("end_at") or r.get("duration_seconds"):
        head.add_row("Until", until(r))
    head.add_row("Reason", r["reason"])
    for key, value in (r.get("change_info") or {}).items():
        head.add_row(f"  {key}", value)
    for key, value in (r.get("params") or {}).items():
        head.add_row(f"  {key}", value)
    if r["status"] == "pending_approval":
        head.add_row("Decide by", when(r["decide_by"]))

    levels = Table(title="Approval", title_justify="left", show_edge=False)
    for column in ("Level", "Approvers", "Needed", "Approved", "State"):
        levels.add_column(column)
    for level in r.get("levels", []):
        levels.add_row(
            str(level["level"]),
            level["approvers"],
            str(level["min_approvals"]),
            str(level["approvals"]),
            status(level["state"]),
        )
    parts: list[Any] = [Panel(head, expand=False), levels, timeline(r.get("timeline", []))]
    grant = r.get("grant")
    if grant:
        parts.append(grants_table([grant]))
    return Group(*parts)


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
            Text(entry["actor"], style="bold"),
            Text(entry["message"], style="" if ok else "red"),
        )
        if not last:
            table.add_row(Text("│", style="dim"), "", "", "")
    return table


def audit_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Audit trail (newest first)", title_justify="left")
    for column in ("#", "Time", "Action", "Outcome", "Actor", "User", "Req", "Detail"):
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
            e["action"],
            status(e["outcome"]),
            e["actor"],
            e.get("subject") or "-",
            str(e["request_id"]) if e.get("request_id") else "-",
            detail[:160],
        )
    return table
