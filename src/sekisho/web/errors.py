"""Domain errors to web responses. The only place the web UI maps errors.

- Invalid input on a form: the form again, each problem beside its field with its rule (422).
- A failed sign-in: the sign-in form again with one vague message, whatever failed.
- Not signed in, or the token ended: to the sign-in page, and back here afterwards.
- Anything else a service refuses: a page that says what and why, with the right status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import structlog
from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from sekisho.api.problems import UNEXPECTED, status_of  # one mapping, one wording
from sekisho.domain import errors
from sekisho.domain.errors import FieldProblem
from sekisho.web import render
from sekisho.web.session import clear_session

log = structlog.get_logger(__name__)

SIGN_IN_FAILED = (
    "Sign-in failed: check your user name, password and code. "
    "After repeated failures, signing in from here pauses for a while."
)


@dataclass(frozen=True)
class FormErrors:
    """What to show on a form sent back: problems by field, and a sentence at the top."""

    summary: str
    fields: dict[str, list[FieldProblem]] = field(default_factory=dict)

    def at(self, *names: str) -> list[FieldProblem]:
        return [p for name in names for p in self.fields.get(name, [])]

    def __bool__(self) -> bool:
        return bool(self.summary or self.fields)


NO_ERRORS = FormErrors("")

# Renders the submitted form again with its errors, at the given status.
Redisplay = Callable[[FormErrors, int], Response]


def redisplay_on_error(request: Request, redisplay: Redisplay) -> None:
    """Declare how this request's form is shown again if the service refuses its input."""
    request.state.redisplay = redisplay


def form_errors(error: errors.InvalidInput) -> FormErrors:
    fields: dict[str, list[FieldProblem]] = {}
    for problem in error.problems:
        fields.setdefault(problem.field, []).append(problem)
    count = len(error.problems)
    summary = "Fix the field marked below." if count == 1 else f"Fix the {count} fields below."
    return FormErrors(summary, fields)


def respond(request: Request, error: errors.SekishoError) -> Response:
    """The web's answer to a refusal from a service."""
    redisplay: Redisplay | None = getattr(request.state, "redisplay", None)
    if isinstance(error, errors.AuthenticationFailed):
        if redisplay is not None:  # the sign-in form itself: one vague message
            return redisplay(FormErrors(SIGN_IN_FAILED), 401)
        return to_sign_in(request)
    if isinstance(error, errors.InvalidInput) and redisplay is not None:
        return redisplay(form_errors(error), 422)
    return message_page(request, error.title, error.message, status_of(error), error.code)


def to_sign_in(request: Request) -> Response:
    """Send the browser to sign in, and back to this page afterwards."""
    polled = bool(request.headers.get("HX-Request"))
    if polled:  # back to the page that polled, not to its fragment
        here = _same_site(request, request.headers.get("HX-Current-URL", "")) or "/"
    elif request.method == "GET":
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:  # a form posted after the token ended: back to the page it was on, not the POST
        here = _same_site_referer(request) or "/"
    target = "/signin" if here in ("/", "/signin") else f"/signin?next={quote(here, safe='/')}"
    if polled:  # the whole page goes to sign in, not the fragment
        response: Response = Response(status_code=204, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if request.cookies.get("sekisho_session"):
        clear_session(response, request)
    return response


def message_page(request: Request, title: str, message: str, status: int, code: str) -> Response:
    user = getattr(request.state, "web_user", None)
    return render.page(
        request,
        "error.html",
        user,
        status=status,
        title=title,
        message=message,
        code=code,
        status_code=status,
        back=_same_site_referer(request),
    )


def unexpected(request: Request, error: Exception) -> Response:
    log.error(
        "unhandled error in the web UI",
        path=request.url.path,
        error=type(error).__name__,
        exc_info=error,
    )
    return message_page(
        request,
        "Something went wrong",
        UNEXPECTED,
        500,
        "internal-error",
    )


def _same_site_referer(request: Request) -> str | None:
    return _same_site(request, request.headers.get("referer", ""))


def _same_site(request: Request, url: str) -> str | None:
    """The path (and query) of `url` if it is on this site, else None."""
    origin = f"{request.url.scheme}://{request.url.netloc}"
    if url.startswith(origin + "/"):
        return url[len(origin) :]
    return None
