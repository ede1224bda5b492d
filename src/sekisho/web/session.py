"""The signed-in browser: the login token in a cookie, and who it belongs to.

The cookie holds the same short-lived token `sekisho login` prints: HttpOnly (no script reads
it), SameSite=Strict (no other site makes the browser send it), Secure on HTTPS, Path=/, and
it expires with the token. Signing out revokes the token itself, not just the cookie.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request, Response

from sekisho.bootstrap import Core
from sekisho.domain.access import AccessModel
from sekisho.domain.actor import Actor
from sekisho.domain.errors import AuthenticationFailed
from sekisho.domain.identity import IssuedToken, Principal
from sekisho.web import csrf

COOKIE = "sekisho_session"


def get_core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


CoreDep = Annotated[Core, Depends(get_core)]


@dataclass(frozen=True)
class WebUser:
    """Who is looking at the page, and what the navigation may offer them."""

    name: str
    display_name: str
    actor: Actor
    principal: Principal
    admin: bool
    auditor: bool
    approver: bool  # decides some template's approvals
    locker: bool  # may place and remove locks
    csrf: str  # the token this browser's forms carry
    standing_groups: frozenset[str]


def client_source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def is_https(request: Request) -> bool:
    # Behind a TLS-terminating proxy uvicorn's proxy headers set the scheme.
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, issued: IssuedToken, now: datetime) -> None:
    # Max-Age, not Expires: it counts from when the browser gets the cookie, so a browser
    # whose clock is off still drops the cookie when the token ends.
    lifetime = max(0, int((issued.expires_at - now).total_seconds()))
    response.set_cookie(
        COOKIE,
        issued.token,
        max_age=lifetime,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    response.delete_cookie(csrf.PRESESSION_COOKIE, path="/")


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=is_https(request)
    )


def web_user(core: Core, request: Request, principal: Principal, token: str) -> WebUser:
    model: AccessModel = core.models.model()
    name = principal.name
    groups = frozenset(g.name for g in model.standing_groups_of(name))
    user = model.user(name)
    return WebUser(
        name=name,
        display_name=(user.display_name if user else "") or name,
        actor=Actor(name, client_source(request), principal.token_id),
        principal=principal,
        admin=model.is_admin(name),
        auditor=model.is_auditor(name),
        locker=model.may_lock(name),
        approver=any(g.permissions.approve for g in model.groups if g.name in groups),
        csrf=csrf.token_for(token),
        standing_groups=groups,
    )


def current_user(request: Request, core: CoreDep) -> WebUser:
    """The signed-in user, or AuthenticationFailed (the web sends them to sign in)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise AuthenticationFailed("sign in first")
    principal = core.identity.authenticate(token)
    user = web_user(core, request, principal, token)
    request.state.web_user = user  # error pages keep the navigation
    return user


async def _sent_token(request: Request) -> str | None:
    form = await request.form()
    sent = form.get(csrf.FIELD)
    return sent if isinstance(sent, str) else request.headers.get(csrf.HEADER)


async def session_form_checked(request: Request) -> None:
    """Refuse a signed-in browser's state-changing request without its CSRF token."""
    csrf.check(request.cookies.get(COOKIE), await _sent_token(request))


async def presession_form_checked(request: Request) -> None:
    """The same for the sign-in form, keyed by the pre-session cookie."""
    csrf.check(request.cookies.get(csrf.PRESESSION_COOKIE), await _sent_token(request))


def signed_in_post(
    user: Annotated[WebUser, Depends(current_user)],
    _checked: Annotated[None, Depends(session_form_checked)],
) -> WebUser:
    """A signed-in user's state-changing request, its CSRF token checked."""
    return user


SignedIn = Annotated[WebUser, Depends(current_user)]
SignedInPost = Annotated[WebUser, Depends(signed_in_post)]
