"""Jinja2 pages: the environment, the filters every page uses, and the page frame's context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from sekisho import __version__
from sekisho.domain.requests import RequestStatus
from sekisho.domain.timespec import iso
from sekisho.queries.requests import RequestQuery
from sekisho.web import flash
from sekisho.web.session import WebUser, get_core

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def when(value: datetime | None) -> Markup:
    """An instant as UTC in <time>; the page's script shows it in the viewer's zone."""
    if value is None:
        return Markup('<span class="muted">-</span>')
    utc = value.astimezone(UTC)
    return Markup('<time datetime="{}" title="{}" data-local>{}</time>').format(
        iso(utc), utc.strftime("%Y-%m-%d %H:%M:%S UTC"), utc.strftime("%Y-%m-%d %H:%M UTC")
    )


def human_duration(value: float | timedelta | None) -> str:
    """2h 5m, 45s, 3d 4h: the two largest units."""
    if value is None:
        return "-"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts[:2])


def countdown(end: datetime, now: datetime) -> Markup:
    """Time left until `end`, counted down in the browser from the server's own clock."""
    left = max(0, int((end - now).total_seconds()))
    return Markup('<span class="countdown" data-countdown="{}">{} left</span>').format(
        left, human_duration(left)
    )


def nbytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop always returns


def label(value: str | None) -> str:
    """`pending_approval` -> `pending approval`."""
    return (value or "").replace("_", " ")


def field_id(name: str) -> str:
    """The id of the input a service's field name refers to (`info.target` -> `info-target`)."""
    return "until" if name == "for" else name.replace(".", "-")


FIELD_LABELS = {
    "template": "Template",
    "group": "Work group",
    "until": "End",
    "for": "How long",
    "start": "Start",
    "reason": "Justification",
    "comment": "Comment",
    "user": "User",
}


def field_label(name: str) -> str:
    """What the form calls a service's field (`until` -> `End`, `param.ticket` -> `ticket`)."""
    return FIELD_LABELS.get(name, name.removeprefix("info.").removeprefix("param."))


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,  # a typo in a template fails its test, not silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        duration=human_duration,
        nbytes=nbytes,
        label=label,
        field_id=field_id,
        field_label=field_label,
    )
    env.globals.update(countdown=countdown, version=__version__)
    return env


ENV = _environment()


@dataclass(frozen=True)
class NavCounts:
    mine_open: int  # my requests not final yet
    to_approve: int  # waiting for a decision I may give


def nav_counts(request: Request, user: WebUser) -> NavCounts:
    core = get_core(request)
    mine = core.workflow.list_requests(user.actor, RequestQuery(mine=True))
    waiting = (
        core.workflow.list_requests(user.actor, RequestQuery(to_approve=True))
        if user.approver
        else []
    )
    open_ = sum(1 for r in mine if not RequestStatus(r.status).is_final)
    return NavCounts(open_, len(waiting))


def fragment(template: str, /, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A piece of a page (an htmx swap): no frame, no navigation."""
    return HTMLResponse(ENV.get_template(template).render(**context), status_code=status)


def page(
    request: Request,
    template: str,
    user: WebUser | None,
    /,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A full page in the frame: navigation with counts, the waiting flash message."""
    shown = flash.peek(request)
    body = ENV.get_template(template).render(
        request_path=request.url.path,
        user=user,
        nav=nav_counts(request, user) if user else None,
        flash=shown,
        **context,
    )
    response = HTMLResponse(body, status_code=status)
    if shown is not None:
        flash.clear(response)
    return response
