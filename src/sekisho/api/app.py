"""The REST API under /api/v1: thin routes over the services, errors as RFC 9457 problems.

The API alone: the web UI, the gateway and the scheduler are put beside it by the one place
that builds the server (`sekisho.server`), which also says where the gateway's CA comes from.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from sekisho import __version__
from sekisho.api import problems
from sekisho.api.deps import GatewayCa, no_gateway_ca
from sekisho.api.limits import MAX_BODY, DeclaredBodyLimit
from sekisho.api.one_version import OneVersionPerRequest
from sekisho.api.routers import (
    audit,
    auth,
    credentials,
    decisions,
    grants,
    locks,
    notifications,
    requests,
    scim,
    sessions,
    shared_signals,
    slack,
)
from sekisho.bootstrap import Core
from sekisho.store import outage

__all__ = ["MAX_BODY", "OPENAPI_URL", "create_api"]

OPENAPI_URL = "/api/v1/openapi.json"


class Readiness(BaseModel):
    status: str
    database: str
    version: str


def create_api(core: Core, *, gateway_ca: GatewayCa = no_gateway_ca) -> FastAPI:
    """The API on its own app; `gateway_ca` reads the CA `GET /gateway` publishes."""
    app = FastAPI(
        title="sekisho",
        version=__version__,
        summary="Just-in-time production access: request, approve, grant, expire, audit.",
        openapi_url=OPENAPI_URL,
        docs_url=None,  # the web UI serves them, from the package, not from a CDN
        redoc_url=None,
    )
    app.state.core = core
    app.state.gateway_ca = gateway_ca
    problems.install(app)
    app.add_middleware(OneVersionPerRequest, models=core.models)
    _limit_bodies(app)
    proxies = core.settings.trusted_proxy_list
    if proxies:  # outermost: the client's address and scheme as the proxy saw them
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    app.include_router(_v1(core))
    app.include_router(shared_signals.well_known)
    app.include_router(scim.router)
    app.include_router(slack.router)
    _document_problems(app)
    return app


def _limit_bodies(app: FastAPI) -> None:
    """Bodies are counted as they are read, however they are sent (chunked too): Starlette's
    limiter stops reading past MAX_BODY and the handlers answer a 413 problem. A body that
    says up front it is too large is refused before anything reads it."""
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY)
    app.add_middleware(DeclaredBodyLimit, max_body_size=MAX_BODY)


def _v1(core: Core) -> APIRouter:
    v1 = APIRouter(prefix="/api/v1")

    @v1.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (whatever the database does)."""
        return {"status": "ok", "version": __version__}

    @v1.get(
        "/readyz", tags=["service"], response_model=Readiness, responses=problems.responses(503)
    )
    def readyz(request: Request) -> Response | Readiness:
        """Readiness, for a load balancer: 503 while the database cannot be reached."""
        if not outage.watch(core.db).probe(core.db):
            return problems.database_unavailable(request.url.path)
        return Readiness(status="ready", database="ok", version=__version__)

    routers = (auth, requests, grants, locks, decisions, audit, sessions, credentials)
    for module in (*routers, notifications, shared_signals):
        v1.include_router(module.router)
    return v1


def _document_problems(app: FastAPI) -> None:
    """The OpenAPI document with the Problem schema its error responses refer to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
