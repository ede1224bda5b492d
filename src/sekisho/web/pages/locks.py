"""Locks, the kill switch: those in force and recent ones, a form to place one (for those
who may lock), and each lock's unlock button."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from sekisho.bootstrap import Core
from sekisho.domain.locks import LockKind
from sekisho.web import flash, render
from sekisho.web.errors import NO_ERRORS, FormErrors, redisplay_on_error
from sekisho.web.forms import Form, text
from sekisho.web.routing import WebRoute
from sekisho.web.session import CoreDep, SignedIn, SignedInPost, WebUser

router = APIRouter(route_class=WebRoute)

LockId = Annotated[int, Path(ge=1, le=2**62)]
KINDS = [k.value for k in LockKind]


def _page(
    request: Request,
    core: Core,
    user: WebUser,
    typed: dict[str, str] | None = None,
    errors: FormErrors = NO_ERRORS,
    status: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "locks": core.locks.list_locks(user.actor, everything=True)[:100],
        "may_lock": user.locker,  # the form and the buttons; the service decides
        "kinds": KINDS,
        "typed": typed or {},
        "errors": errors,
    }
    return render.page(request, "locks.html", user, status=status, **context)


@router.get("/locks")
def locks_page(request: Request, core: CoreDep, user: SignedIn) -> Response:
    return _page(request, core, user)


@router.post("/locks")
def place_lock(request: Request, core: CoreDep, user: SignedInPost, form: Form) -> Response:
    typed = {key: value for key, value in form.items() if isinstance(value, str)}
    redisplay_on_error(
        request, lambda errors, status: _page(request, core, user, typed, errors, status)
    )
    placed = core.locks.place(
        user.actor,
        text(form, "kind"),
        text(form, "subject"),
        text(form, "reason"),
        duration=text(form, "for") or None,
    )
    ended = len(placed.grants_ended) + len(placed.grants_pending)
    message = (
        f"Lock #{placed.lock.id} on {placed.lock.subject} is in force: {ended} grant(s) ended."
    )
    return flash.redirect(request, "/locks", message)


@router.post("/locks/{lock_id}/unlock")
def unlock(request: Request, core: CoreDep, user: SignedInPost, lock_id: LockId) -> Response:
    view = core.locks.remove(user.actor, lock_id)
    message = f"Lock #{view.id} on {view.subject} removed. Nothing it ended comes back."
    return flash.redirect(request, "/locks", message)
