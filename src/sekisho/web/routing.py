"""The route class every page uses: domain errors become pages, and pages get safe headers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from sekisho.api.problems import UNAVAILABLE
from sekisho.domain.errors import InvalidInput, NotFound, SekishoError
from sekisho.store import outage
from sekisho.web import errors

# Only our own scripts and styles, nothing from another origin, no framing. Inline SVG (the
# model picture, the QR code) is markup, not an image source, so it needs no exception.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Pages show who has access to production: no shared or back-button cache keeps them.
    "Cache-Control": "no-store",
}


def harden(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class WebRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handle(request)
            except SekishoError as error:
                # Rendering an error page reads the navigation's counts: off the event loop.
                response = await run_in_threadpool(errors.respond, request, error)
            except RequestValidationError as error:
                response = await run_in_threadpool(errors.respond, request, _shape(error))
            except SQLAlchemyError as error:
                response = await run_in_threadpool(_database_error, request, error)
            except HTTPException as error:
                response = await run_in_threadpool(
                    errors.message_page,
                    request,
                    str(error.detail),
                    str(error.detail),
                    error.status_code,
                    "http-error",
                )
            except Exception as error:
                response = await run_in_threadpool(errors.unexpected, request, error)
            if response.status_code == 413:  # the body limiter stopped reading: so do we
                response.headers["Connection"] = "close"
            return harden(response)

        return route


def _database_error(request: Request, error: SQLAlchemyError) -> Response:
    if not outage.unavailable(error):
        return errors.unexpected(request, error)
    outage.watch(request.app.state.core.db).failed(error)  # logged once per outage
    request.state.web_user = None  # the page's navigation would ask the database again
    response = errors.message_page(
        request, "The database is unavailable", UNAVAILABLE, 503, "database-unavailable"
    )
    response.headers["Retry-After"] = str(outage.RETRY_AFTER_SECONDS)
    return response


def _shape(error: RequestValidationError) -> SekishoError:
    """A malformed address (`/requests/abc`) is a page that does not exist."""
    locations = [e.get("loc", ()) for e in error.errors()]
    if any(loc and loc[0] == "path" for loc in locations):
        return NotFound("no such page")
    return InvalidInput.one("form", "malformed", "the form was malformed: reload and try again")
