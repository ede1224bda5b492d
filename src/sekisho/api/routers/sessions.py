from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel

from sekisho.api.deps import ActorDep, CoreDep, GatewayCaDep
from sekisho.api.problems import responses
from sekisho.api.schemas import Body, Short
from sekisho.queries.sessions import SessionView

router = APIRouter(tags=["gateway"], responses=responses(401, 503))

SessionId = Annotated[int, Path(ge=1, le=2**62)]


class GatewayInfo(BaseModel):
    address: str  # host:port that `sekisho forward` dials
    ca_pem: str | None  # the CA that signs the gateway's certificate, when sekisho knows it


@router.get("/gateway", response_model=GatewayInfo)
def gateway_info(core: CoreDep, _actor: ActorDep, ca: GatewayCaDep) -> GatewayInfo:
    """Where the gateway listens, and the CA to verify it with: the one every node on this
    database shares, so it verifies whichever node's gateway a client reaches."""
    return GatewayInfo(address=core.settings.gateway_address, ca_pem=ca())


@router.get("/sessions", response_model=list[SessionView], responses=responses(422))
def list_sessions(
    core: CoreDep,
    actor: ActorDep,
    active: bool = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[SessionView]:
    """Forwarding sessions, newest first: yours, or everyone's for auditors."""
    return core.sessions.list_sessions(actor, active_only=active, limit=limit)


@router.get(
    "/sessions/{session_id}", response_model=SessionView, responses=responses(403, 404, 422)
)
def show_session(session_id: SessionId, core: CoreDep, actor: ActorDep) -> SessionView:
    return core.sessions.get(actor, session_id)


class KillBody(Body):
    reason: Short = ""  # on record and shown to the forwarder: "killed by NAME: REASON"


@router.post(
    "/sessions/{session_id}/kill",
    response_model=SessionView,
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(403, 404, 409, 413, 422),
)
def kill_session(
    session_id: SessionId, core: CoreDep, actor: ActorDep, body: KillBody | None = None
) -> SessionView:
    """Kill a live session (admins, or its own user): 202, the kill is on record
    (`killed_at`, `killed_by`) and the gateway carrying the session cuts it: at once where
    the kill's event reaches it, else within its re-check interval (1 s). The session is
    returned as on record: `status` turns `ended` once that gateway has cut it."""
    return core.sessions.kill(actor, session_id, body.reason if body else "")
