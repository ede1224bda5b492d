"""Access now: live grants with a countdown, ended ones with why and when; release, revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from starlette.datastructures import FormData

from sekisho.bootstrap import Core
from sekisho.domain.timespec import iso
from sekisho.services.views import GrantView
from sekisho.web import flash, render
from sekisho.web.errors import NO_ERRORS, FormErrors, redisplay_on_error
from sekisho.web.forms import Form, extension_draft, text
from sekisho.web.links import safe_next
from sekisho.web.pages.requests import detail_page
from sekisho.web.routing import WebRoute
from sekisho.web.session import CoreDep, SignedIn, SignedInPost, WebUser

router = APIRouter(route_class=WebRoute)

GrantId = Annotated[int, Path(ge=1, le=2**62)]
ENDED_SHOWN = 50

WHY = {
    "expired": "reached its end",
    "released": "released by its holder",
    "revoked": "revoked",
    "removed": "removed by a request",
    "failed": "its runbook failed",
}


def why_ended(grant: GrantView) -> str:
    """Why access ended, in words: the reason, who, and their note."""
    if grant.end_reason is None:
        return "reached its end (clean-up pending)" if grant.status == "active" else grant.status
    words = WHY.get(grant.end_reason, grant.end_reason)
    if grant.end_reason in ("revoked", "removed") and grant.ended_by:
        words += f" by {grant.ended_by}"
    if grant.end_note and grant.end_reason == "revoked":
        words += f": {grant.end_note}"
    if grant.status == "ending":
        words += " (provider confirming)"
    return words


def _context(
    core: Core, user: WebUser, failed: str = "", errors: FormErrors = NO_ERRORS
) -> dict[str, Any]:
    now = core.now()
    mine = core.grants.list_grants(user.actor, user=user.name, limit=ENDED_SHOWN + 50)
    active = [g for g in mine if g.active or g.status == "activating"]
    ended = [g for g in mine if g not in active][:ENDED_SHOWN]
    others: list[GrantView] = []
    if user.auditor:
        everyone = core.grants.list_grants(user.actor, active_only=True)
        others = [g for g in everyone if g.user != user.name]
    return {
        "active": active,
        "ended": ended,
        "others": others,
        "now": now,
        "why_ended": why_ended,
        "failed": failed,
        "errors": errors,
    }


@router.get("/access")
def access_now(request: Request, core: CoreDep, user: SignedIn) -> Response:
    return render.page(request, "access.html", user, **_context(core, user))


@router.get("/access/live")
def access_live(core: CoreDep, user: SignedIn) -> Response:
    return render.fragment("_access_live.html", user=user, **_context(core, user))


def _done(request: Request, back: str, message: str) -> Response:
    return flash.redirect(request, safe_next(back, "/access"), message)


@router.post("/grants/{grant_id}/release")
def release(
    request: Request, core: CoreDep, user: SignedInPost, form: Form, grant_id: GrantId
) -> Response:
    core.grants.release(user.actor, grant_id)
    return _done(request, text(form, "back"), f"Grant #{grant_id} released: your access has ended.")


def _grant_form_again(
    request: Request,
    core: Core,
    user: WebUser,
    form: FormData,
    back: str,
    which: str,  # revoke | extend
    grant_id: int,
) -> None:
    """A refused grant form is shown again where it was sent from: the request's page, or
    the access page."""
    typed = {key: value for key, value in form.items() if isinstance(value, str)}

    def again(errors: FormErrors, status: int) -> Response:
        if back.startswith("/requests/") and back.removeprefix("/requests/").isdigit():
            request_id = int(back.removeprefix("/requests/"))
            return detail_page(
                request,
                core,
                user,
                request_id,
                failed=which,
                errors=errors,
                typed=typed,
                status=status,
            )
        context = _context(core, user, failed=f"{which}-{grant_id}", errors=errors)
        return render.page(request, "access.html", user, status=status, **context)

    redisplay_on_error(request, again)


@router.post("/grants/{grant_id}/revoke")
def revoke(
    request: Request, core: CoreDep, user: SignedInPost, form: Form, grant_id: GrantId
) -> Response:
    back = safe_next(text(form, "back"), "/access")
    _grant_form_again(request, core, user, form, back, "revoke", grant_id)
    view = core.grants.revoke(user.actor, grant_id, text(form, "reason"))
    return _done(
        request, back, f"Grant #{grant_id} of {view.user} revoked: their access has ended."
    )


@router.post("/grants/{grant_id}/extend")
def extend(
    request: Request, core: CoreDep, user: SignedInPost, form: Form, grant_id: GrantId
) -> Response:
    """The grant's Extend form: a self-service extension is in force when the page comes
    back; any other waits for the template's approvers, on its own request page."""
    back = safe_next(text(form, "back"), "/access")
    _grant_form_again(request, core, user, form, back, "extend", grant_id)
    view = core.workflow.extend(user.actor, grant_id, extension_draft(form))
    if view.status == "succeeded":
        end = iso(view.end_at) if view.end_at else "its new end"
        message = f"Grant #{grant_id} extended: access now lasts until {end}."
    else:
        message = (
            f"Request #{view.id} to extend grant #{grant_id} filed: {render.label(view.status)}."
        )
    return flash.redirect(request, f"/requests/{view.id}", message)
