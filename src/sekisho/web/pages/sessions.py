"""Gateway sessions: live ones with bytes and duration, recent ones with why they ended."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from sekisho.bootstrap import Core
from sekisho.domain.sessions import ACTIVE
from sekisho.queries.sessions import SessionView
from sekisho.web import flash, render
from sekisho.web.routing import WebRoute
from sekisho.web.session import CoreDep, SignedIn, SignedInPost, WebUser

router = APIRouter(route_class=WebRoute)

SessionId = Annotated[int, Path(ge=1, le=2**62)]
SHOWN = 100


def lasted(session: SessionView, now: datetime) -> float:
    """Seconds the session has run (live) or ran (ended)."""
    return ((session.ended_at or now) - session.started_at).total_seconds()


def _context(core: Core, user: WebUser) -> dict[str, Any]:
    sessions = core.sessions.list_sessions(user.actor, limit=SHOWN)
    return {
        "live": [s for s in sessions if s.status == ACTIVE],
        "recent": [s for s in sessions if s.status != ACTIVE],
        "now": core.now(),
        "lasted": lasted,
        "may_kill": user.admin,  # the button; the service decides
        "gateway": core.settings.gateway_address,
    }


@router.get("/sessions")
def sessions_page(request: Request, core: CoreDep, user: SignedIn) -> Response:
    return render.page(request, "sessions.html", user, **_context(core, user))


@router.get("/sessions/live")
def sessions_live(core: CoreDep, user: SignedIn) -> Response:
    return render.fragment("_sessions_live.html", user=user, **_context(core, user))


@router.post("/sessions/{session_id}/kill")
def kill(request: Request, core: CoreDep, user: SignedInPost, session_id: SessionId) -> Response:
    view = core.sessions.kill(user.actor, session_id)
    message = f"Session #{view.id} of {view.user}: the gateway is cutting it."
    return flash.redirect(request, "/sessions", message)
