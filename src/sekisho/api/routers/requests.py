from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from sekisho.api.deps import ActorDep, CoreDep
from sekisho.api.problems import responses
from sekisho.api.schemas import DecisionBody, RequestCreate, ReviewBody
from sekisho.domain.drafts import RequestDraft
from sekisho.domain.requests import RequestStatus
from sekisho.queries.requests import RequestQuery
from sekisho.services.views import RequestSummary, RequestView

router = APIRouter(prefix="/requests", tags=["requests"], responses=responses(401, 422, 503))

RequestId = Annotated[int, Path(ge=1, le=2**62, description="The request's number")]


@router.post(
    "",
    response_model=RequestView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(403, 409, 413),
)
def file_request(body: RequestCreate, core: CoreDep, actor: ActorDep) -> RequestView:
    """File a request from a template. Auto-approvable templates run their runbook at once, and
    so does an emergency (`emergency: true`, with a reason and the ticket parameter)."""
    draft = RequestDraft(
        template=body.template,
        group=body.group,
        reason=body.reason,
        user=body.user,
        until=body.until,
        duration=body.for_,
        start=body.start,
        info=body.info,
        params=body.params,
        emergency=body.emergency,
    )
    return core.workflow.file(actor, draft)


@router.get("", response_model=list[RequestSummary])
def list_requests(
    core: CoreDep,
    actor: ActorDep,
    mine: bool = False,
    to_approve: bool = False,
    status: RequestStatus | None = None,
    emergency: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[RequestSummary]:
    query = RequestQuery(
        mine=mine, to_approve=to_approve, status=status, emergency=emergency, limit=limit
    )
    return core.workflow.list_requests(actor, query)


@router.get("/{request_id}", response_model=RequestView, responses=responses(403, 404))
def show_request(request_id: RequestId, core: CoreDep, actor: ActorDep) -> RequestView:
    return core.workflow.get(actor, request_id)


@router.post(
    "/{request_id}/approve", response_model=RequestView, responses=responses(403, 404, 409, 413)
)
def approve(
    request_id: RequestId, core: CoreDep, actor: ActorDep, body: DecisionBody | None = None
) -> RequestView:
    return core.workflow.approve(actor, request_id, body.comment if body else "")


@router.post(
    "/{request_id}/reject", response_model=RequestView, responses=responses(403, 404, 409, 413)
)
def reject(
    request_id: RequestId, body: DecisionBody, core: CoreDep, actor: ActorDep
) -> RequestView:
    return core.workflow.reject(actor, request_id, body.comment)


@router.post("/{request_id}/cancel", response_model=RequestView, responses=responses(403, 404, 409))
def cancel(request_id: RequestId, core: CoreDep, actor: ActorDep) -> RequestView:
    return core.workflow.cancel(actor, request_id)


@router.post(
    "/{request_id}/review", response_model=RequestView, responses=responses(403, 404, 409, 413)
)
def review(request_id: RequestId, body: ReviewBody, core: CoreDep, actor: ActorDep) -> RequestView:
    """An approver of the template marks an emergency reviewed, once, with a comment."""
    return core.workflow.review(actor, request_id, body.comment)
