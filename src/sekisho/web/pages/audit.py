"""The audit trail: search and filter, page through, export, and the hash-chain badge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from sekisho.bootstrap import Core
from sekisho.domain import timespec
from sekisho.domain.errors import FieldProblem, InvalidInput
from sekisho.services.audit import AuditFilter
from sekisho.services.views import AuditEntryView, EmergencyCount
from sekisho.web import audit_export, render
from sekisho.web.errors import NO_ERRORS, FormErrors, redisplay_on_error
from sekisho.web.forms import with_zone
from sekisho.web.routing import WebRoute
from sekisho.web.session import CoreDep, SignedIn, WebUser

router = APIRouter(route_class=WebRoute)

PAGE = 50
FILTERS = ("user", "request", "action", "since", "until", "tz")


def _typed(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip()[:200] for name in FILTERS}


def audit_filter(core: Core, typed: Mapping[str, str], limit: int) -> AuditFilter:
    """The page's filters as the trail's own; a bad one is refused beside its box."""
    problems: list[FieldProblem] = []
    request_id = None
    if typed["request"]:
        number = typed["request"].removeprefix("#")
        if number.isascii() and number.isdigit() and 1 <= int(number) <= 2**62:
            request_id = int(number)
        else:
            problems.append(FieldProblem("request", "integer", "a request number, like 12"))
    zone = timespec.zone(core.models.model().settings.timezone)
    instants: dict[str, datetime | None] = {"since": None, "until": None}
    for name in instants:
        if typed[name]:
            try:
                instants[name] = timespec.parse_instant(
                    with_zone(typed[name], typed["tz"]), name, zone
                )
            except InvalidInput as error:
                problems += error.problems
    if len(typed["user"]) > 128:
        problems.append(FieldProblem("user", "max_length", "at most 128 characters"))
    if len(typed["action"]) > 64:
        problems.append(FieldProblem("action", "max_length", "at most 64 characters"))
    if problems:
        raise InvalidInput(problems)
    return AuditFilter(
        user=typed["user"] or None,
        request_id=request_id,
        action=typed["action"] or None,
        since=instants["since"],
        until=instants["until"],
        limit=limit,
    )


def _page(
    request: Request,
    user: WebUser,
    typed: dict[str, str],
    errors: FormErrors,
    status: int = 200,
    entries: list[AuditEntryView] | None = None,
    older: int | None = None,
    emergencies: list[EmergencyCount] | None = None,
) -> Response:
    shown = {k: v for k, v in typed.items() if v}
    if not (shown.get("since") or shown.get("until")):
        shown.pop("tz", None)  # the zone matters only to the times
    query = urlencode(shown)
    return render.page(
        request,
        "audit.html",
        user,
        status=status,
        typed=typed,
        errors=errors,
        entries=entries or [],
        older=older,
        emergencies=emergencies or [],
        filtered=bool(shown.keys() - {"tz"}),
        query=query,
        paged=request.query_params.get("before") is not None,
    )


@router.get("/audit")
def audit_page(request: Request, core: CoreDep, user: SignedIn) -> Response:
    typed = _typed(request)
    redisplay_on_error(request, lambda errors, status: _page(request, user, typed, errors, status))
    f = audit_filter(core, typed, PAGE + 1)  # one more: is there an older page?
    before = request.query_params.get("before", "")
    if before.isascii() and before.isdigit() and 1 <= int(before) <= 2**62:
        f = replace(f, before_seq=int(before))
    found = core.audit_queries.list_entries(user.actor, f)
    older = found[PAGE - 1].seq if len(found) > PAGE else None
    emergencies = core.workflow.emergencies(user.actor)  # break-glass use, per person
    shown = list(found[:PAGE])
    return _page(
        request, user, typed, NO_ERRORS, entries=shown, older=older, emergencies=emergencies
    )


@router.get("/audit/verify")
def verify(core: CoreDep, user: SignedIn) -> Response:
    """The hash-chain check, loaded after the page: it walks the whole trail."""
    report = core.audit_trail.verify(user.actor)
    return render.fragment("_audit_verify.html", report=report)


def _export(request: Request, core: Core, user: WebUser, media_type: str, suffix: str) -> Response:
    typed = _typed(request)
    f = audit_filter(core, typed, audit_export.BATCH)

    def fetch(batch: AuditFilter) -> list[AuditEntryView]:
        return core.audit_queries.list_entries(user.actor, batch)

    # The first batch before the response starts: a refusal is still a proper page.
    first = fetch(f)
    entries = audit_export.rows(fetch, first, f)
    lines = audit_export.csv_lines(entries) if suffix == "csv" else audit_export.jsonl(entries)
    stamp = core.now().strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        lines,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="sekisho-audit-{stamp}.{suffix}"'},
    )


@router.get("/audit/export.csv")
def export_csv(request: Request, core: CoreDep, user: SignedIn) -> Response:
    return _export(request, core, user, "text/csv; charset=utf-8", "csv")


@router.get("/audit/export.jsonl")
def export_jsonl(request: Request, core: CoreDep, user: SignedIn) -> Response:
    return _export(request, core, user, "application/x-ndjson", "jsonl")
