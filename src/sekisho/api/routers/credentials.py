from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from sekisho.api.deps import ActorDep, CoreDep
from sekisho.domain.timespec import parse_duration
from sekisho.services.broker import RoleCredentials

router = APIRouter(tags=["aws"])


class CredentialsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Annotated[str, Field(max_length=200, description="ACCOUNT/ROLE")]
    duration: Annotated[str | None, Field(max_length=20, description="e.g. 1h")] = None
    console: bool = False


@router.post("/credentials", response_model=RoleCredentials)
def assume_role(
    body: CredentialsBody, core: CoreDep, actor: ActorDep, response: Response
) -> RoleCredentials:
    """Role credentials from STS, for a role the caller may assume now; never past the grant."""
    duration = parse_duration(body.duration, "duration") if body.duration else None
    issued = core.broker.assume(actor, body.role, duration, console=body.console)
    response.headers["Cache-Control"] = "no-store"  # secrets: never kept by a cache
    return issued
