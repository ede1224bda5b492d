"""One-shot messages after a redirect ("Request #4 approved"), carried in a short cookie."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

COOKIE = "sekisho_flash"
_KINDS = frozenset({"ok", "error", "info"})


@dataclass(frozen=True)
class Flash:
    kind: str  # ok | error | info
    text: str


def put(request: Request, response: Response, kind: str, text: str) -> None:
    raw = json.dumps([kind, text[:500]]).encode()
    value = base64.urlsafe_b64encode(raw).decode()
    response.set_cookie(
        COOKIE,
        value,
        max_age=60,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def redirect(request: Request, to: str, text: str, kind: str = "ok") -> Response:
    """After a change: go to `to` (303, so a reload does not post again) and say what happened."""
    response = RedirectResponse(to, status_code=303)
    put(request, response, kind, text)
    return response


def peek(request: Request) -> Flash | None:
    """The message waiting for this page, if any (it is shown escaped, as plain text)."""
    value = request.cookies.get(COOKIE)
    if not value or len(value) > 2000:
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, TypeError):
        return None
    if kind not in _KINDS or not isinstance(text, str):
        return None
    return Flash(kind, text)


def clear(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
