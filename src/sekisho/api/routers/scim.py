"""SCIM 2.0 at /scim/v2 (RFC 7644): where the company's IdP provisions people and groups.

No sekisho login here: the IdP's bearer token (`sekisho scim token IDP`) is the proof, and
it scopes every call to that IdP's own directory. Bodies and answers are
`application/scim+json`; a refusal is a SCIM Error with its status and `scimType`
(invalidValue, invalidSyntax, invalidFilter, uniqueness, ...), and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from scim2_models import (
    Context,
    Group,
    InvalidValueException,
    NotFoundException,
    Resource,
    ResourceType,
    Schema,
    SCIMException,
    SearchRequest,
    UniquenessException,
    User,
)
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from sekisho.api import problems
from sekisho.api.deps import CoreDep
from sekisho.bootstrap import Core
from sekisho.domain.errors import SekishoError
from sekisho.operations import directory
from sekisho.operations.directory import Page, Provisioning
from sekisho.scim import resources as scim

SCIM_JSON = "application/scim+json"
router = APIRouter(prefix="/scim/v2", tags=["scim"], include_in_schema=False)
Authorization = Annotated[str | None, Header()]
# Query parameters arrive as text and are checked here, so a bad one is a SCIM error too.
Filter = Annotated[str | None, Query(alias="filter")]
StartIndex = Annotated[str | None, Query(alias="startIndex")]
Count = Annotated[str | None, Query(alias="count")]
Attributes = Annotated[str | None, Query(alias="attributes")]
Excluded = Annotated[str | None, Query(alias="excludedAttributes")]


def _integer(name: str, value: str | None, default: int) -> int:
    """startIndex or count (RFC 7644 §3.4.2.4): an integer, else invalidValue."""
    if value is None:
        return default
    try:
        return int(value.strip()[:20])
    except ValueError:
        raise InvalidValueException(detail=f"{name} must be an integer") from None


def _scim(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, media_type=SCIM_JSON)


def _refused(exc: SCIMException) -> Response:
    return _scim(scim.error_body(exc), exc.status)


async def _run(call: Callable[[], Any], status: int = 200) -> Response:
    """Run a directory call off the event loop; its answer, or its SCIM refusal."""
    try:
        answer = await run_in_threadpool(call)
    except SCIMException as exc:
        return _refused(exc)
    except IntegrityError:  # two writes took one userName (or group name) at the same time
        return _refused(UniquenessException(detail="another write took this name just now"))
    except SekishoError as exc:  # what a leaver's lock met (the database is down, say)
        status = problems.status_of(exc)
        return _scim({"schemas": [_ERROR], "status": str(status), "detail": exc.message}, status)
    if answer is None:
        return Response(status_code=204)
    return _scim(answer, status)


_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None  # parsing refuses it as invalidSyntax, with the schema's words


def _idp(request: Request, authorization: str | None) -> str:
    core = request.app.state.core
    idp: str = core.directory.tokens.idp_of(authorization)
    return idp


def _listed(page: Page) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": page.total,
        "startIndex": page.start,
        "itemsPerPage": len(page.resources),
        "Resources": page.resources,
    }


# -- discovery (RFC 7644 §4) -------------------------------------------------------------------


@router.get("/ServiceProviderConfig")
async def service_provider_config(
    request: Request, authorization: Authorization = None
) -> Response:
    def config() -> dict[str, Any]:
        _idp(request, authorization)
        body: dict[str, Any] = scim.CONFIG.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        return body

    return await _run(config)


@router.get("/ResourceTypes")
async def resource_types(request: Request, authorization: Authorization = None) -> Response:
    return await _run(lambda: _all(request, authorization, scim.PROVIDER.resource_types))


@router.get("/ResourceTypes/{name}")
async def resource_type(
    name: str, request: Request, authorization: Authorization = None
) -> Response:
    return await _run(lambda: _one(request, authorization, scim.PROVIDER.resource_types, name))


@router.get("/Schemas")
async def schemas(request: Request, authorization: Authorization = None) -> Response:
    return await _run(lambda: _all(request, authorization, scim.PROVIDER.schemas))


@router.get("/Schemas/{schema_id}")
async def schema(schema_id: str, request: Request, authorization: Authorization = None) -> Response:
    return await _run(lambda: _one(request, authorization, scim.PROVIDER.schemas, schema_id))


Described = Sequence[ResourceType] | Sequence[Schema]


def _all(request: Request, authorization: str | None, found: Described) -> dict[str, Any]:
    """Every resource type (or schema) the service has, as a ListResponse."""
    _idp(request, authorization)
    shown = [item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE) for item in found]
    return _listed(Page(len(shown), 1, shown))


def _one(
    request: Request, authorization: str | None, found: Described, wanted: str
) -> dict[str, Any]:
    """The resource type (or schema) whose id is `wanted`, or a SCIM 404."""
    _idp(request, authorization)
    for item in found:
        if item.id == wanted:
            shown: dict[str, Any] = item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
            return shown
    raise NotFoundException(detail=f"no {type(found[0]).__name__} {wanted[:200]}")


# -- Users and Groups (RFC 7644 §3): the same routes for each ---------------------------------

Pick = Callable[[Core], Provisioning]


def _collection_routes(endpoint: str, model: type[Resource[Any]], pick: Pick) -> None:
    """POST (create), GET (search) and POST .search on a resource type's endpoint."""

    async def create(
        request: Request, core: CoreDep, authorization: Authorization = None
    ) -> Response:
        body = await _body(request)
        return await _run(lambda: pick(core).create(_idp(request, authorization), body), 201)

    async def search(
        request: Request,
        core: CoreDep,
        authorization: Authorization = None,
        filter_: Filter = None,
        start: StartIndex = None,
        count: Count = None,
        attributes: Attributes = None,
        excluded: Excluded = None,
    ) -> Response:
        def found() -> dict[str, Any]:
            idp = _idp(request, authorization)
            params = scim.chosen(model, attributes, excluded)
            first = _integer("startIndex", start, 1)
            size = _integer("count", count, scim.DEFAULT_COUNT)
            return _listed(pick(core).search(idp, filter_, first, size, params))

        return await _run(found)

    async def search_posted(
        request: Request, core: CoreDep, authorization: Authorization = None
    ) -> Response:
        body = await _body(request)

        def found() -> dict[str, Any]:
            idp = _idp(request, authorization)
            asked = scim.search_request(model, body)
            return _listed(pick(core).search(idp, *_page_of(asked), asked))

        return await _run(found)

    router.add_api_route(endpoint, create, methods=["POST"])
    router.add_api_route(endpoint, search, methods=["GET"])
    router.add_api_route(f"{endpoint}/.search", search_posted, methods=["POST"])


def _item_routes(endpoint: str, model: type[Resource[Any]], pick: Pick) -> None:
    """GET, PUT, PATCH and DELETE on one resource of a type."""

    async def get(
        resource_id: str,
        request: Request,
        core: CoreDep,
        authorization: Authorization = None,
        attributes: Attributes = None,
        excluded: Excluded = None,
    ) -> Response:
        def one() -> dict[str, Any]:
            idp = _idp(request, authorization)
            return pick(core).get(idp, resource_id, scim.chosen(model, attributes, excluded))

        return await _run(one)

    async def replace(
        resource_id: str, request: Request, core: CoreDep, authorization: Authorization = None
    ) -> Response:
        body = await _body(request)
        return await _run(
            lambda: pick(core).replace(_idp(request, authorization), resource_id, body)
        )

    async def patch(
        resource_id: str, request: Request, core: CoreDep, authorization: Authorization = None
    ) -> Response:
        body = await _body(request)
        return await _run(lambda: pick(core).patch(_idp(request, authorization), resource_id, body))

    async def delete(
        resource_id: str, request: Request, core: CoreDep, authorization: Authorization = None
    ) -> Response:
        return await _run(lambda: pick(core).delete(_idp(request, authorization), resource_id))

    item = f"{endpoint}/{{resource_id}}"
    for method, handler in (("GET", get), ("PUT", replace), ("PATCH", patch), ("DELETE", delete)):
        router.add_api_route(item, handler, methods=[method])


for _endpoint, _model, _pick in (
    ("/Users", User, lambda core: core.directory.users),
    ("/Groups", Group, lambda core: core.directory.groups),
):
    _collection_routes(_endpoint, _model, _pick)
    _item_routes(_endpoint, _model, _pick)


@router.post("/.search")
async def search_everything(
    request: Request, core: CoreDep, authorization: Authorization = None
) -> Response:
    """RFC 7644 §3.4.3: a search at the root covers users and groups."""
    body = await _body(request)

    def search() -> dict[str, Any]:
        idp = _idp(request, authorization)
        asked = scim.search_request(User, body)
        users, groups = core.directory.users, core.directory.groups
        return _listed(directory.search_everything(users, groups, idp, _page_of(asked), asked))

    return await _run(search)


# Endpoints that exist, so another method on them is 405 (RFC 7644 §3.12), not 404.
_ENDPOINTS = frozenset({"ServiceProviderConfig", "ResourceTypes", "Schemas", "Users", "Groups"})


@router.api_route("/{anything:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def nowhere(anything: str, request: Request) -> Response:
    """Anything else under /scim/v2: a SCIM error, never the web UI's page."""
    first = anything.split("/", 1)[0]
    if first in _ENDPOINTS:
        detail = f"{request.method} is not supported on /scim/v2/{anything[:100]}"
        error = {"schemas": [_ERROR], "status": "405", "detail": detail}
        return _scim(error, 405)
    return _refused(NotFoundException(detail=f"nothing at /scim/v2/{anything[:100]}"))


def _page_of(asked: SearchRequest[Any]) -> tuple[str | None, int, int]:
    """A SearchRequest's filter and page, as a GET's query would give them."""
    text = str(asked.filter) if asked.filter is not None else None
    count = asked.count if asked.count is not None else scim.DEFAULT_COUNT
    return text, asked.start_index or 1, count
