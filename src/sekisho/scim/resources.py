"""SCIM resources on the wire: what a request body becomes, what a stored row is shown as,
what the service says it supports, and filters. All of it is scim2-models' (parsing,
validation per request, PATCH, filters, Error): nothing here re-implements the RFCs.

A refusal is a `SCIMException` (scim2-models): its `status` and `scimType` are the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from scim2_models import (
    BaseModel,
    Context,
    Error,
    Group,
    InvalidFilterException,
    InvalidSyntaxException,
    InvalidValueException,
    Meta,
    PatchOp,
    Resource,
    ResponseParameters,
    SCIMException,
    ScimFilter,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    User,
)
from scim2_models.path.expressions import CompareOperator, Comparison
from scim2_models.resources.service_provider_config import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    Filter,
    Patch,
    Sort,
)

R = TypeVar("R", bound=Resource[Any])
M = TypeVar("M", bound=BaseModel)  # a SCIM resource or message
MAX_RESULTS = 200  # resources per page, at most (ServiceProviderConfig.filter.maxResults)
DEFAULT_COUNT = 100

CONFIG = ServiceProviderConfig(
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=False),
    etag=ETag(supported=False),
    authentication_schemes=[
        AuthenticationScheme(
            type="oauthbearertoken",
            name="OAuth Bearer Token",
            description="The IdP's SCIM token, from `sekisho scim token IDP`",
            primary=True,
        )
    ],
)
PROVIDER = ScimProvider(models=[User, Group], config=CONFIG)


def parse(model: type[R], body: object, context: Context) -> R:
    """The resource a request body describes, checked as `context` asks (RFC 7643 §2:
    required attributes, mutability); invalidValue / invalidSyntax when it is not one."""
    return _validated(model, body, context)


def parse_patch(model: type[R], body: object) -> PatchOp[R]:
    """A PatchOp for `model` (RFC 7644 §3.5.2), checked before anything is applied."""
    patch: PatchOp[R] = _validated(PatchOp[model], body, Context.RESOURCE_PATCH_REQUEST)  # type: ignore[valid-type]
    return patch


def _validated(message: type[M], body: object, context: Context) -> M:
    if not isinstance(body, Mapping):
        raise _invalid_syntax("the body must be a JSON object")
    try:
        return message.model_validate(dict(body), scim_ctx=context)
    except ValidationError as exc:
        raise _refusal(exc) from None


def stored(model: type[R], value: Mapping[str, Any]) -> R:
    """A resource as the store keeps it (written by `storable`, so it is valid)."""
    return model.model_validate(dict(value))


def storable(resource: Resource[Any]) -> dict[str, Any]:
    """What the store keeps of a resource: everything the IdP sent but its id, its meta and
    any password (sekisho signs nobody in with one the IdP sends, and never keeps it)."""
    if isinstance(resource, User):
        resource.password = None
    kept: dict[str, Any] = resource.model_dump(scim_ctx=Context.DEFAULT)
    for server_owned in ("id", "meta"):
        kept.pop(server_owned, None)
    return kept


@dataclass(frozen=True)
class Stamp:
    """What the server says about a stored resource: its id and its meta."""

    id: str
    resource_type: str
    created: datetime
    modified: datetime
    version: int
    location: str


Chosen = ResponseParameters[Any] | None  # the attributes a request asked for, or left out


def chosen(model: type[R], attributes: str | None, excluded: str | None) -> Chosen:
    """`attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5), checked against `model`."""
    if not attributes and not excluded:
        return None
    if len(attributes or "") + len(excluded or "") > 2000:
        raise InvalidValueException(detail="the attributes asked for are too long a list")
    asked = {"attributes": attributes, "excludedAttributes": excluded}
    try:
        found: ResponseParameters[Any] = ResponseParameters[model].model_validate(  # type: ignore[valid-type]
            {k: v for k, v in asked.items() if v}
        )
    except ValidationError as exc:
        raise _refusal(exc) from None
    return found


def search_request(model: type[R], body: object) -> SearchRequest[R]:
    """A POST .search body (RFC 7644 §3.4.3): filter, page and attributes in one."""
    asked: SearchRequest[R] = _validated(SearchRequest[model], body, Context.SEARCH_REQUEST)  # type: ignore[valid-type]
    return asked


def shown(resource: R, stamp: Stamp, context: Context, params: Chosen = None) -> dict[str, Any]:
    """A resource as an answer shows it: with its id and meta, never a password, and only
    the attributes the request chose (`params`)."""
    resource.id = stamp.id
    resource.meta = Meta(
        resource_type=stamp.resource_type,
        created=stamp.created,
        last_modified=stamp.modified,
        version=f'W/"{stamp.version}"',
        location=stamp.location,
    )
    answer: dict[str, Any] = resource.model_dump(scim_ctx=context, response_parameters=params)
    return answer


def filter_of(model: type[R], text: str | None) -> ScimFilter[R] | None:
    """The request's filter, bound to `model`; invalidFilter when it does not parse."""
    if text is None or not text.strip():
        return None
    if len(text) > 1000:
        raise InvalidFilterException(detail="the filter is too long")
    bound: ScimFilter[R] = ScimFilter[model](text)  # type: ignore[valid-type]
    return bound


def equality_on(found: ScimFilter[Any] | None, attribute: str) -> str | None:
    """The value of `attribute eq "value"` when that is the whole filter (what IdPs ask
    before every write): the store looks it up by its key instead of reading everyone."""
    if found is None:
        return None
    node = found.ast
    if not isinstance(node, Comparison) or node.op is not CompareOperator.eq:
        return None
    path = node.attr_path
    if path.sub_attr is not None or path.attr.casefold() != attribute.casefold():
        return None
    return node.value if isinstance(node.value, str) else None


def error_body(exc: SCIMException) -> dict[str, Any]:
    body: dict[str, Any] = exc.to_error().model_dump()
    return body


def _refusal(exc: ValidationError) -> SCIMException:
    errors = exc.errors()
    if not errors:
        return InvalidValueException(detail="the resource is not valid")
    return SCIMException.from_error(Error.from_validation_error(errors[0]))


def _invalid_syntax(detail: str) -> SCIMException:
    return InvalidSyntaxException(detail=detail)
