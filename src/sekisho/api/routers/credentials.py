from __future__ import annotations

from fastapi import APIRouter, Response

from sekisho.api.deps import ActorDep, CoreDep
from sekisho.api.problems import responses
from sekisho.api.schemas import CredentialsBody
from sekisho.domain.credentials import IssuedCredentials
from sekisho.domain.timespec import parse_duration

router = APIRouter(tags=["aws"], responses=responses(401, 503))


@router.post(
    "/credentials",
    response_model=IssuedCredentials,
    responses=responses(403, 409, 413, 422, 502),
)
def assume_role(
    body: CredentialsBody, core: CoreDep, actor: ActorDep, response: Response
) -> IssuedCredentials:
    """Role credentials from STS, for a role the caller may assume now; never past the grant."""
    duration = parse_duration(body.duration, "duration") if body.duration else None
    issued = core.broker.assume(actor, body.role, duration, console=body.console)
    response.headers["Cache-Control"] = "no-store"  # secrets: never kept by a cache
    return issued
