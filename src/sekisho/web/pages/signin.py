"""Sign in (password + TOTP), the authenticator set-up at first sign-in, and sign out."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, urlsplit

import segno
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from sekisho.bootstrap import Core
from sekisho.domain.errors import AuthenticationFailed, Locked, RateLimited, SekishoError
from sekisho.domain.sso import read_cli_return
from sekisho.operations.idp_sign_in import STATE_TTL, Callback, RefusedForCli, SsoNotConfigured
from sekisho.services.idp_sign_in import CALLBACK_PATH
from sekisho.sso.oidc import IdpUnavailable
from sekisho.web import csrf, flash, render
from sekisho.web.errors import NO_ERRORS, FormErrors, redisplay_on_error
from sekisho.web.forms import Form, text
from sekisho.web.links import safe_next
from sekisho.web.routing import WebRoute
from sekisho.web.session import (
    CoreDep,
    SignedInPost,
    clear_session,
    client_source,
    is_https,
    presession_form_checked,
    set_session,
)

router = APIRouter(route_class=WebRoute)

PresessionChecked = Annotated[None, Depends(presession_form_checked)]


def _sign_in_page(
    request: Request, secret: str, name: str, next_: str, errors: FormErrors, status: int = 200
) -> Response:
    core: Core = request.app.state.core
    idp = core.idp_sign_in.provider()
    return render.page(
        request,
        "signin.html",
        None,
        status=status,
        csrf_token=csrf.token_for(secret),
        name=name,
        next=next_,
        errors=errors,
        idp_label=idp.button_label if idp else None,
    )


def presession_page(
    request: Request, next_: str, errors: FormErrors = NO_ERRORS, status: int = 200
) -> Response:
    """The sign-in page, with the pre-session cookie its forms' CSRF tokens are keyed by."""
    secret = request.cookies.get(csrf.PRESESSION_COOKIE) or csrf.new_presession_secret()
    response = _sign_in_page(request, secret, "", next_, errors, status)
    if request.cookies.get(csrf.PRESESSION_COOKIE) != secret:
        response.set_cookie(
            csrf.PRESESSION_COOKIE,
            secret,
            path="/",
            httponly=True,
            samesite="strict",
            secure=is_https(request),
        )
    return response


@router.get("/signin")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    return presession_page(request, safe_next(next))


@router.post("/signin")
async def sign_in(
    request: Request, core: CoreDep, form: Form, _csrf: PresessionChecked
) -> Response:
    # On the event loop, as the API's login: the hash's turn and the refusal's delay are
    # awaited, never slept on a worker thread.
    name = text(form, "user")[:128]
    password = text(form, "password", strip=False)[:512]
    code = text(form, "code").replace(" ", "")[:16]
    next_ = safe_next(text(form, "next"))
    secret = request.cookies.get(csrf.PRESESSION_COOKIE, "")
    redisplay_on_error(
        request,
        lambda errors, status: _sign_in_page(request, secret, name, next_, errors, status),
    )
    if not code:
        # First sign-in: no authenticator yet. After the password checks out, show the
        # secret to scan, then ask for a code (and the password again: the page never
        # holds both factors at once).
        uri = await core.identity.first_sign_in_uri_async(name, password, client_source(request))
        return render.page(
            request,
            "setup_totp.html",
            None,
            csrf_token=csrf.token_for(secret),
            name=name,
            next=next_,
            qr=_qr_svg(uri),
            secret=_secret_of(uri),
            errors=NO_ERRORS,
        )
    issued = await core.identity.login_async(name, password, code, client_source(request))
    response = RedirectResponse(next_, status_code=303)
    set_session(response, request, issued, core.now())
    return response


@router.post("/signout")
def sign_out(request: Request, core: CoreDep, user: SignedInPost) -> Response:
    core.identity.logout(user.principal, user.actor.source)
    response = flash.redirect(request, "/signin", "You are signed out.", "info")
    clear_session(response, request)
    return response


def _qr_svg(uri: str) -> Markup:
    code = segno.make(uri, error="m")
    svg: str = code.svg_inline(
        scale=5, border=3, dark="#000", light="#fff", svgclass="qr", omitsize=True
    )
    # segno writes only its own path data; no text from the request reaches it unescaped.
    labelled = svg.replace(
        "<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1
    )
    return Markup(labelled)  # noqa: S704 - generated markup, see above


def _secret_of(uri: str) -> str:
    """The base32 secret, in groups of four, for apps that take it typed."""
    secret = parse_qs(urlsplit(uri).query).get("secret", [""])[0]
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# -- through the identity provider ------------------------------------------------------------

SSO_COOKIE = "sekisho_sso"  # binds a sign-in sent to the IdP to the browser that sent it
SSO_COOKIE_PATH = "/signin/oidc"


@router.get("/signin/oidc")
def idp_sign_in_start(
    request: Request,
    core: CoreDep,
    next: str | None = None,
    cli_redirect: str | None = None,
    cli_challenge: str | None = None,
    fresh: bool = False,
) -> Response:
    """Off to the identity provider, with a state, a nonce and PKCE. Opened by `sekisho login
    --sso`, it names the CLI's loopback listener and PKCE challenge too. `fresh`: a step-up,
    the IdP signs the person in again (`sekisho login --sso --fresh`, "Sign in again")."""
    next_ = safe_next(next)
    cli = read_cli_return(cli_redirect, cli_challenge)
    redirect_uri = core.settings.public_url.rstrip("/") + CALLBACK_PATH
    try:
        source = client_source(request)
        started = core.idp_sign_in.start(redirect_uri, next_, source, cli, fresh=fresh)
    except IdpUnavailable as exc:
        return presession_page(request, next_, FormErrors(f"Sign-in refused: {exc}"), 503)
    except RateLimited as exc:
        return presession_page(request, next_, FormErrors(f"Sign-in refused: {exc}"), 429)
    except SsoNotConfigured as exc:
        return presession_page(request, next_, FormErrors(f"Sign-in refused: {exc}"), 404)
    response = RedirectResponse(started.url, status_code=303)
    # Lax, not Strict: the IdP sends the browser back from its own site, a top-level GET.
    response.set_cookie(
        SSO_COOKIE,
        started.browser,
        max_age=int(STATE_TTL.total_seconds()),
        path=SSO_COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )
    return response


@router.get(CALLBACK_PATH)
def idp_sign_in_callback(
    request: Request,
    core: CoreDep,
    state: str = "",
    code: str = "",
    error: str = "",
) -> Response:
    """Back from the identity provider: a sekisho login for the user its ID token names, or
    the sign-in page saying why not."""
    callback = Callback(
        state=state,
        code=code,
        error=error,
        browser=request.cookies.get(SSO_COOKIE, ""),
        source=client_source(request),
    )
    try:
        finished = core.idp_sign_in.finish(callback)
    except RefusedForCli as exc:  # the CLI's listener says why in the terminal
        to_cli = RedirectResponse(exc.cli_return, status_code=303)
        to_cli.delete_cookie(SSO_COOKIE, path=SSO_COOKIE_PATH)
        return to_cli
    except (AuthenticationFailed, Locked, SsoNotConfigured) as exc:
        response = presession_page(request, "/", FormErrors(exc.message), _status_of(exc))
        response.delete_cookie(SSO_COOKIE, path=SSO_COOKIE_PATH)
        return response
    if finished.cli_return is not None:  # the CLI's listener takes it from here
        response = RedirectResponse(finished.cli_return, status_code=303)
        response.delete_cookie(SSO_COOKIE, path=SSO_COOKIE_PATH)
        return response
    assert finished.issued is not None
    idp = core.idp_sign_in.provider()
    response = render.page(
        request,
        "signed_in.html",
        None,
        name=finished.issued.user,
        idp=idp.display_name if idp and idp.display_name else "your identity provider",
        next=safe_next(finished.next_url),
    )
    set_session(response, request, finished.issued, core.now())
    response.delete_cookie(SSO_COOKIE, path=SSO_COOKIE_PATH)
    return response


def _status_of(error: SekishoError) -> int:
    return 403 if isinstance(error, Locked) else 401
