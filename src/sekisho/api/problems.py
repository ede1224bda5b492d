"""Domain errors to RFC 9457 problem responses. The only place the API maps errors."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from sekisho.domain import errors
from sekisho.store import outage

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/problem+json"
# No promise that nothing changed: the error may come after a transaction committed.
UNEXPECTED = (
    "sekisho hit an unexpected error. Anything it saved before the error stands: look again "
    "before you retry. The server log has details."
)
UNAVAILABLE = (
    "sekisho cannot reach its database just now. Try again in a moment (anything saved "
    "before it went away stands: look before you retry)."
)

STATUS: list[tuple[type[errors.SekishoError], int]] = [
    (errors.InvalidInput, 422),
    (errors.InvalidModel, 422),
    (errors.NotFound, 404),
    (errors.LoginThrottled, 429),
    (errors.AuthenticationFailed, 401),
    (errors.Forbidden, 403),
    (errors.Conflict, 409),
    (errors.RateLimited, 429),
    (errors.ProviderFailure, 502),
    (errors.Unavailable, 503),
]


# What each problem status means, as the OpenAPI document says it.
MEANING = {
    401: "Not logged in, or the token has ended (or, on login: wrong user, password or code)",
    403: "Not allowed for this user",
    404: "No such thing",
    409: "Conflicts with the current state (already decided, not active, ...)",
    413: "The request body is over 64 KiB",
    422: "Invalid input: each field, the rule it breaks and why",
    429: "Too many attempts: locked for a while, or rate-limited",
    502: "The provider (IAM, STS) failed",
    503: "The database (see Retry-After) or the identity provider is unavailable",
}
PROBLEM_REF = "#/components/schemas/Problem"


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem responses an operation can give, for its OpenAPI description."""
    content = {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
    return {status: {"description": MEANING[status], "content": content} for status in statuses}


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add the Problem schema the responses refer to (FastAPI adds only models it saw)."""
    from sekisho.api.schemas import Problem

    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    found = openapi.setdefault("components", {}).setdefault("schemas", {})
    found.update(schema.pop("$defs", {}))
    found["Problem"] = schema
    return openapi


def status_of(error: errors.SekishoError) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 400


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    field_errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:sekisho:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
    }
    if field_errors:
        body["errors"] = field_errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def too_large(request: Request) -> JSONResponse:
    """413 for a body over the limit; the connection closes, so the rest is never read."""
    limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    detail = f"request bodies are limited to {limit} bytes" if limit else "the body is too large"
    return problem(
        413,
        "too-large",
        "Request too large",
        detail,
        request.url.path,
        headers={"Connection": "close"},
    )


def database_unavailable(instance: str) -> JSONResponse:
    return problem(
        503,
        "database-unavailable",
        "The database is unavailable",
        UNAVAILABLE,
        instance,
        headers={"Retry-After": str(outage.RETRY_AFTER_SECONDS)},
    )


def install(app: FastAPI) -> None:
    """Every refusal the app gives, as a problem: domain errors, malformed input, HTTP errors,
    an unreachable database, and anything unexpected (a 500 that says what it can)."""
    app.exception_handler(errors.SekishoError)(_domain)
    app.exception_handler(RequestValidationError)(_shape)
    app.exception_handler(StarletteHTTPException)(_http)
    app.exception_handler(SQLAlchemyError)(_database)
    app.exception_handler(Exception)(_unexpected)


async def _domain(request: Request, exc: errors.SekishoError) -> JSONResponse:
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(
        status, exc.code, exc.title, exc.message, request.url.path, _field_errors(exc), headers
    )


def _field_errors(exc: errors.SekishoError) -> list[dict[str, str]] | None:
    if isinstance(exc, errors.InvalidInput):
        return [{"field": p.field, "rule": p.rule, "message": p.message} for p in exc.problems]
    if isinstance(exc, errors.InvalidModel):
        return [
            {"field": p.path or f"line {p.line}", "rule": p.rule, "message": str(p)}
            for p in exc.problems
        ]
    return None


async def _shape(request: Request, exc: RequestValidationError) -> JSONResponse:
    field_errors = []
    for error in exc.errors():
        # ("body", "info", "change", "[key]") names the field info.change
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "[key]")]
        field_errors.append(
            {
                "field": ".".join(location) or "body",
                "rule": str(error.get("type", "invalid")),
                "message": str(error.get("msg", "invalid")),
            }
        )
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors)
    return problem(422, "invalid-input", "Invalid input", detail, request.url.path, field_errors)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 413:  # the body limiter stopped reading
        return too_large(request)
    if exc.status_code == 400:  # FastAPI could not read the body at all (not UTF-8, ...)
        rule = {"field": "body", "rule": "malformed", "message": "is not readable JSON"}
        return problem(
            422,
            "invalid-input",
            "Invalid input",
            "body: is not readable JSON",
            request.url.path,
            [rule],
        )
    code = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(
        exc.status_code, "http-error"
    )
    return problem(exc.status_code, code, str(exc.detail), str(exc.detail), request.url.path)


async def _database(request: Request, exc: SQLAlchemyError) -> JSONResponse:
    if not outage.unavailable(exc):
        return unexpected(request, exc)
    outage.watch(request.app.state.core.db).failed(exc)  # logged once per outage
    return database_unavailable(request.url.path)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    return unexpected(request, exc)


def unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return problem(500, "internal-error", "Internal error", UNEXPECTED, request.url.path)
