from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from sekisho.api.deps import ActorDep, CoreDep
from sekisho.api.problems import responses
from sekisho.api.schemas import ExtendBody, Line, RevokeBody
from sekisho.domain.extensions import ExtensionDraft
from sekisho.services.views import GrantView, RequestView

router = APIRouter(prefix="/grants", tags=["grants"], responses=responses(401, 403, 422, 503))

GrantId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("", response_model=list[GrantView])
def list_grants(
    core: CoreDep,
    actor: ActorDep,
    active: bool = False,
    user: Annotated[Line | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[GrantView]:
    """Newest first: yours, or anyone's for auditors; each with what you may do to it."""
    return core.grants.list_grants(actor, active_only=active, user=user, limit=limit)


@router.get("/{grant_id}", response_model=GrantView, responses=responses(404))
def show_grant(grant_id: GrantId, core: CoreDep, actor: ActorDep) -> GrantView:
    return core.grants.get(actor, grant_id)


@router.post("/{grant_id}/release", response_model=GrantView, responses=responses(404, 409, 502))
def release(grant_id: GrantId, core: CoreDep, actor: ActorDep) -> GrantView:
    """The holder is done: access ends now."""
    return core.grants.release(actor, grant_id)


@router.post(
    "/{grant_id}/revoke", response_model=GrantView, responses=responses(404, 409, 413, 502)
)
def revoke(grant_id: GrantId, body: RevokeBody, core: CoreDep, actor: ActorDep) -> GrantView:
    """An admin ends someone's access now, with a reason."""
    return core.grants.revoke(actor, grant_id, body.reason)


@router.post(
    "/{grant_id}/extend",
    response_model=RequestView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(404, 409, 413),
)
def extend(grant_id: GrantId, body: ExtendBody, core: CoreDep, actor: ActorDep) -> RequestView:
    """Ask for more time on an active grant (its holder, or an admin): an extension request,
    decided under the grant's template. Self-service within the template's `extend` takes
    effect at once; otherwise its approval moves the grant's end, with no gap in access."""
    draft = ExtensionDraft(reason=body.reason, until=body.until, duration=body.for_)
    return core.workflow.extend(actor, grant_id, draft)
