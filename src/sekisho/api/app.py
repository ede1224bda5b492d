"""The REST API under /api/v1: thin routes over the services, errors as RFC 9457 problems."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response

from sekisho import __version__, web
from sekisho.api import problems
from sekisho.api.routers import (
    audit,
    auth,
    credentials,
    decisions,
    grants,
    notifications,
    requests,
    sessions,
)
from sekisho.services.core import Core

MAX_BODY = 64 * 1024  # no legitimate request is larger; refuse before parsing


def create_app(core: Core) -> FastAPI:
    app = FastAPI(
        title="sekisho",
        version=__version__,
        summary="Just-in-time production access: request, approve, grant, expire, audit.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.core = core
    problems.install(app)

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return problems.problem(
                413,
                "too-large",
                "Request too large",
                f"request bodies are limited to {MAX_BODY} bytes",
                request.url.path,
            )
        return await call_next(request)

    v1 = APIRouter(prefix="/api/v1")

    @v1.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for module in (auth, requests, grants, decisions, audit, sessions, credentials, notifications):
        v1.include_router(module.router)
    app.include_router(v1)
    web.install(app)  # the web UI at /, after the API so /api/v1 keeps its routes
    return app
