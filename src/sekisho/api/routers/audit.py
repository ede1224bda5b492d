from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from sekisho.api.deps import ActorDep, CoreDep
from sekisho.api.problems import responses
from sekisho.api.schemas import AuditEntryOut, Line, VerifyOut
from sekisho.services.audit import AuditFilter

router = APIRouter(prefix="/audit", tags=["audit"], responses=responses(401, 403, 503))


@router.get("", response_model=list[AuditEntryOut], responses=responses(422))
def list_entries(
    core: CoreDep,
    actor: ActorDep,
    user: Annotated[Line | None, Query(max_length=128)] = None,
    request: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    action: Annotated[Line | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="paging: older than")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> list[AuditEntryOut]:
    """Newest first. Filter by user (as actor or subject), request, action (prefix with '.')."""
    found = core.audit_trail.list_entries(
        actor,
        AuditFilter(
            user=user,
            request_id=request,
            action=action,
            since=since,
            until=until,
            limit=limit,
            before_seq=before,
        ),
    )
    return [AuditEntryOut.model_validate(row) for row in found]


@router.get("/verify", response_model=VerifyOut)
def verify(core: CoreDep, actor: ActorDep) -> VerifyOut:
    """Walk the hash chain: any edited, deleted or reordered entry is reported."""
    report = core.audit_trail.verify(actor)
    return VerifyOut(
        ok=report.ok,
        entries=report.entries,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        problems=report.problems,
    )
