"""Requests: file one, list mine and those waiting for me, the request's own page, decide."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from sekisho.bootstrap import Core
from sekisho.domain import drafts
from sekisho.domain.access import Template, TemplateAction
from sekisho.domain.requests import RequestStatus
from sekisho.domain.step_up import StepUpAct, StepUpRule
from sekisho.domain.timespec import parse_duration
from sekisho.queries.requests import RequestQuery
from sekisho.services.views import RequestView
from sekisho.web import flash, render
from sekisho.web.errors import NO_ERRORS, FormErrors, redisplay_on_error
from sekisho.web.forms import QUICK_DURATIONS, Form, request_draft, text
from sekisho.web.links import request_link
from sekisho.web.routing import WebRoute
from sekisho.web.session import CoreDep, SignedIn, SignedInPost, WebUser

router = APIRouter(route_class=WebRoute)

RequestId = Annotated[int, Path(ge=1, le=2**62)]

# Poll while something may still change: quickly while the request moves, slowly while
# its access is live (its end, a release or a revocation will add to the timeline).
POLL_MOVING, POLL_LIVE = "every 2s", "every 10s"


@router.get("/")
def home(_user: SignedIn) -> Response:
    return RedirectResponse("/requests/mine", status_code=303)


# -- lists ----------------------------------------------------------------------------------

LISTS = {
    "mine": ("My requests", RequestQuery(mine=True)),
    "to-approve": ("To approve", RequestQuery(to_approve=True)),
    "all": ("All requests", RequestQuery()),
}


@router.get("/requests/mine")
def my_requests(request: Request, core: CoreDep, user: SignedIn) -> Response:
    return _list(request, core, user, "mine")


@router.get("/requests/to-approve")
def to_approve(request: Request, core: CoreDep, user: SignedIn) -> Response:
    return _list(request, core, user, "to-approve")


@router.get("/requests/all")
def all_requests(request: Request, core: CoreDep, user: SignedIn) -> Response:
    return _list(request, core, user, "all")


def _list(request: Request, core: Core, user: WebUser, which: str) -> Response:
    title, query = LISTS[which]
    rows = core.workflow.list_requests(user.actor, query)
    return render.page(request, "requests.html", user, title=title, which=which, rows=rows)


# -- filing ---------------------------------------------------------------------------------


@router.get("/requests/new")
def new_request(
    request: Request, core: CoreDep, user: SignedIn, template: str | None = None
) -> Response:
    return _new_page(request, core, user, {"template": template or ""}, NO_ERRORS)


@router.get("/requests/new/fields")
def new_request_fields(
    request: Request, core: CoreDep, user: SignedIn, template: str | None = None
) -> Response:
    """The part of the form that depends on the template (htmx swaps it on change)."""
    context = _form_context(core, user, {"template": template or ""}, NO_ERRORS)
    return render.fragment("_request_fields.html", **context)


@router.post("/requests/new")
def file_request(request: Request, core: CoreDep, user: SignedInPost, form: Form) -> Response:
    typed = _typed(form)
    redisplay_on_error(
        request, lambda errors, status: _new_page(request, core, user, typed, errors, status)
    )
    view = core.workflow.file(user.actor, request_draft(form))
    message = f"Request #{view.id} filed: {render.label(view.status)}."
    if view.emergency:
        message = f"Emergency #{view.id}: {render.label(view.status)}; the approvers are alerted."
    return flash.redirect(request, f"/requests/{view.id}", message)


def _typed(form: FormData) -> dict[str, str]:
    """What was typed, to fill the form again when it comes back with errors."""
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _form_context(
    core: Core, user: WebUser, typed: dict[str, str], errors: FormErrors
) -> dict[str, Any]:
    model = core.models.model()
    choices = drafts.requestable(model, user.standing_groups)
    chosen = next((c for c in choices if c[0].name == typed.get("template")), None)
    if chosen is None and choices:
        chosen = choices[0]
    template, groups = chosen if chosen else (None, [])
    quick = [d for d in QUICK_DURATIONS if template is None or _fits(d, template.max_duration)]
    return {
        "choices": choices,
        "template": template,
        "groups": groups,
        "removal": template is not None and template.action is TemplateAction.REMOVE,
        "quick": quick,
        "typed": typed,
        "errors": errors,
        "model_zone": model.settings.timezone,
    }


def _fits(duration: str, limit: timedelta) -> bool:
    return parse_duration(duration, "for") <= limit


def _new_page(
    request: Request,
    core: Core,
    user: WebUser,
    typed: dict[str, str],
    errors: FormErrors,
    status: int = 200,
) -> Response:
    context = _form_context(core, user, typed, errors)
    return render.page(request, "request_new.html", user, status=status, **context)


# -- one request ----------------------------------------------------------------------------


@router.get("/requests/{request_id}")
def show_request(
    request: Request, core: CoreDep, user: SignedIn, request_id: RequestId
) -> Response:
    return detail_page(request, core, user, request_id)


@router.get("/requests/{request_id}/live")
def live_request(
    request: Request,
    core: CoreDep,
    user: SignedIn,
    request_id: RequestId,
    seen: str = "",
) -> Response:
    """The moving parts of a request's page, polled by htmx while anything may change."""
    view = core.workflow.get(user.actor, request_id)
    if seen and seen != view.status:
        # The buttons on the page were for the old status: reload the whole page.
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    return render.fragment("_request_live.html", **_live_context(core, view))


def _live_context(core: Core, view: RequestView) -> dict[str, Any]:
    grant = view.grant
    if not RequestStatus(view.status).is_final:
        poll: str | None = POLL_MOVING
    elif grant is not None and grant.status in ("active", "ending", "activating"):
        poll = POLL_LIVE
    else:
        poll = None
    return {"r": view, "poll": poll, "now": core.now()}


def detail_page(
    request: Request,
    core: Core,
    user: WebUser,
    request_id: int,
    *,
    failed: str = "",
    errors: FormErrors = NO_ERRORS,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    view = core.workflow.get(user.actor, request_id)
    template = core.models.model().template(view.template)
    rule = template.step_up_for(StepUpAct.APPROVE) if template else None
    step_up = _step_up(core, user, rule) if rule and "approve" in view.allowed_actions else None
    return render.page(
        request,
        "request.html",
        user,
        status=status,
        link=request_link(core.settings.public_url, view.id),
        titles=_section_titles(view, template),
        failed=failed,
        errors=errors,
        typed=typed or {},
        step_up=step_up,
        extend_quick=_extend_durations(view, template),
        model_zone=core.models.model().settings.timezone,
        **_live_context(core, view),
    )


def _extend_durations(view: RequestView, template: Template | None) -> list[str]:
    """The quick durations the grant's Extend form offers: those that keep the whole grant
    within the template's maximum (the server checks it anyway)."""
    grant = view.grant
    if grant is None or template is None or "extend" not in grant.allowed_actions:
        return []
    room = grant.start_at + template.max_duration - grant.end_at
    return [d for d in QUICK_DURATIONS if parse_duration(d, "for") <= room]


def _step_up(core: Core, user: WebUser, rule: StepUpRule) -> dict[str, Any]:
    """What the approve form says and does about the template's step-up, for this session."""
    return {
        "rule": rule,
        "fresh": core.passkeys.fresh(user.actor, rule) is not None,
        "passkeys": bool(core.passkeys.passkeys(user.actor)),
    }


def _section_titles(view: RequestView, template: Template | None) -> list[tuple[str, str]]:
    """Change information in the template's order, with its titles; then anything else."""
    known = [(c.name, c.title) for c in template.change_info] if template else []
    names = {name for name, _ in known}
    return known + [(key, key) for key in view.change_info if key not in names]


def _decision_form(
    request: Request, core: Core, user: WebUser, request_id: int, form: FormData, which: str
) -> None:
    typed = _typed(form)
    redisplay_on_error(
        request,
        lambda errors, status: detail_page(
            request,
            core,
            user,
            request_id,
            failed=which,
            errors=errors,
            typed=typed,
            status=status,
        ),
    )


def _back_to(request: Request, request_id: int, message: str) -> Response:
    return flash.redirect(request, f"/requests/{request_id}", message)


@router.post("/requests/{request_id}/approve")
def approve(
    request: Request, core: CoreDep, user: SignedInPost, form: Form, request_id: RequestId
) -> Response:
    _decision_form(request, core, user, request_id, form, "approve")
    view = core.workflow.approve(user.actor, request_id, text(form, "comment"))
    return _back_to(
        request, request_id, f"You approved request #{request_id}: {render.label(view.status)}."
    )


@router.post("/requests/{request_id}/reject")
def reject(
    request: Request, core: CoreDep, user: SignedInPost, form: Form, request_id: RequestId
) -> Response:
    _decision_form(request, core, user, request_id, form, "reject")
    core.workflow.reject(user.actor, request_id, text(form, "comment"))
    return _back_to(request, request_id, f"You rejected request #{request_id}.")


@router.post("/requests/{request_id}/review")
def review(
    request: Request, core: CoreDep, user: SignedInPost, form: Form, request_id: RequestId
) -> Response:
    _decision_form(request, core, user, request_id, form, "review")
    core.workflow.review(user.actor, request_id, text(form, "comment"))
    return _back_to(request, request_id, f"You reviewed emergency #{request_id}.")


@router.post("/requests/{request_id}/cancel")
def cancel(request: Request, core: CoreDep, user: SignedInPost, request_id: RequestId) -> Response:
    core.workflow.cancel(user.actor, request_id)
    return _back_to(request, request_id, f"Request #{request_id} cancelled.")
