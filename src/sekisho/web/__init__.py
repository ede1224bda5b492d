"""The web UI: server-rendered pages (Jinja2, htmx for the live parts), served at `/`.

Every action goes through the same service operations as the CLI and the API; domain errors
are mapped once, in `sekisho.web.errors`.
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from sekisho.web.errors import message_page
from sekisho.web.links import request_link
from sekisho.web.pages import (
    access,
    api_docs,
    audit,
    locks,
    model,
    passkeys,
    requests,
    sessions,
    signin,
)
from sekisho.web.render import STATIC
from sekisho.web.routing import harden

__all__ = ["install", "request_link"]


def install(app: FastAPI) -> None:
    """Add the pages, the API's docs page and their static files to the app that serves the
    API (after the API's routes, so /api/v1 keeps them)."""
    for module in (api_docs, signin, requests, access, sessions, locks, audit, model, passkeys):
        app.include_router(module.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _pages_for_missing_paths(app)


def _pages_for_missing_paths(app: FastAPI) -> None:
    """An unknown address outside the API gets a page; the API keeps its problem documents."""
    api_handler = app.exception_handlers.get(HTTPException)

    async def handler(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/") or not isinstance(exc, HTTPException):
            assert api_handler is not None
            answer = api_handler(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        missing = exc.status_code == 404
        page = await run_in_threadpool(
            message_page,
            request,
            "Page not found" if missing else str(exc.detail),
            f"There is nothing at {request.url.path}." if missing else str(exc.detail),
            exc.status_code,
            "not-found" if missing else "http-error",
        )
        return harden(page)

    app.add_exception_handler(HTTPException, handler)
