"""How large a request may be, and the answer when it is larger."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from sekisho.api import problems

MAX_BODY = 64 * 1024  # no legitimate request is larger


class DeclaredBodyLimit:
    """A body whose Content-Length is over the limit (or not a number) is refused at once,
    as a problem, without reading it. Bodies that do not say their length (chunked) are
    counted as they are read by Starlette's RequestBodyLimitMiddleware, inside this one."""

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app, self.max_body_size = app, max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = Headers(scope=scope).get("content-length")
            if declared is not None and (
                not declared.isdigit() or int(declared) > self.max_body_size
            ):
                scope[MAX_BODY_SIZE_SCOPE_KEY] = self.max_body_size
                response = problems.too_large(Request(scope))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
