from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from sekisho.api.deps import ActorDep, CoreDep
from sekisho.api.problems import responses
from sekisho.api.schemas import AnchorBody, Line, VerifyOut
from sekisho.domain.errors import FieldProblem, InvalidInput
from sekisho.services.audit import AuditFilter, VerifyReport
from sekisho.services.audit_anchor import AnchorError, Checkpoint
from sekisho.services.views import AuditEntryView, EmergencyCount

router = APIRouter(prefix="/audit", tags=["audit"], responses=responses(401, 403, 503))


@router.get("/emergencies", response_model=list[EmergencyCount])
def emergencies(core: CoreDep, actor: ActorDep) -> list[EmergencyCount]:
    """Emergency (break-glass) use per person: uses, reviewed, awaiting review, overdue."""
    return core.workflow.emergencies(actor)


@router.get("", response_model=list[AuditEntryView], responses=responses(422))
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
) -> list[AuditEntryView]:
    """Newest first. Filter by user (as actor or subject), request, action (prefix with '.')."""
    return core.audit_queries.list_entries(
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


@router.get("/verify", response_model=VerifyOut)
def verify(core: CoreDep, actor: ActorDep) -> VerifyOut:
    """Walk the hash chain: any edited, deleted or reordered entry is reported. Without an
    anchor, a rewrite of the whole trail (re-hashed to the head) cannot be detected."""
    return _out(core.audit_trail.verify(actor))


@router.post("/verify", response_model=VerifyOut, responses=responses(413, 422))
def verify_against_anchor(core: CoreDep, actor: ActorDep, body: AnchorBody) -> VerifyOut:
    """Walk the chain and compare it with signed checkpoints kept outside the database: a
    cut end, an edit re-hashed to the head and a replaced trail are reported, and so is a
    checkpoint whose signature does not verify with this server's audit key."""
    anchor: list[Checkpoint] = []
    problems: list[FieldProblem] = []
    for index, data in enumerate(body.checkpoints):
        try:
            anchor.append(Checkpoint.from_json(data, f"checkpoint {index + 1}"))
        except AnchorError as error:
            problems.append(FieldProblem(f"checkpoints[{index}]", "checkpoint", str(error)))
    if problems:
        raise InvalidInput(problems)
    return _out(core.audit_trail.verify(actor, anchor))


def _out(report: VerifyReport) -> VerifyOut:
    return VerifyOut(
        ok=report.ok,
        entries=report.entries,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        problems=report.problems,
        anchor_checkpoints=report.anchor_checkpoints,
        anchored_seq=report.anchored_seq,
        notes=report.notes,
    )
