"""Shared Signals (OpenID SSF 1.0): the transmitter's keys and streams, and the receiver.

Streams are an admin's (a receiver registers with an admin's bearer token). The receiver's
endpoint takes no sekisho login: the SET's signature (and the bearer token the model names)
is the proof, and its answers are RFC 8935's (202, or 400 with `err` and `description`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from sekisho.api.deps import ActorDep, CoreDep
from sekisho.api.problems import responses
from sekisho.api.schemas import SetError, StreamBody, VerifyBody
from sekisho.operations.shared_signals import StreamRequest
from sekisho.services.views import StreamStatusView, StreamView
from sekisho.signals.receiver import MAX_SET_BYTES, SetRejected

router = APIRouter(prefix="/ssf", tags=["shared signals"])
well_known = APIRouter(tags=["shared signals"])

StreamId = Annotated[str, Query(min_length=1, max_length=64, description="The stream's id")]
ADMIN = responses(401, 403, 422, 503)
_REFUSALS = {
    400: "A bad SET: wrong key, issuer or audience, too old, replayed, unknown subject",
    401: "The transmitter's bearer token is missing or wrong",
    403: "This sekisho receives no shared signals",
    503: "The issuer's keys cannot be fetched, or the receiver's token is not configured",
}


@well_known.get("/.well-known/ssf-configuration")
def ssf_configuration(core: CoreDep) -> dict[str, Any]:
    """The transmitter's configuration (SSF 1.0 §7.1)."""
    return core.shared_signals.configuration()


@router.get("/jwks")
def jwks(core: CoreDep) -> dict[str, Any]:
    """The public keys sekisho's SETs are signed with (RFC 7517)."""
    return core.shared_signals.jwks()


@router.post(
    "/streams",
    response_model=StreamView,
    status_code=201,
    responses={**ADMIN, **responses(409, 413)},
)
def create_stream(body: StreamBody, core: CoreDep, actor: ActorDep) -> StreamView:
    """Register a push stream: sekisho's SETs go to `delivery.endpoint_url` from now on."""
    asked = StreamRequest(
        method=body.delivery.method,
        endpoint_url=body.delivery.endpoint_url,
        events_requested=tuple(body.events_requested),
        authorization_header=body.delivery.authorization_header,
        description=body.description,
        audience=body.aud,
    )
    return core.shared_signals.create_stream(actor, asked)


@router.get(
    "/streams", response_model=StreamView | list[StreamView], responses={**ADMIN, **responses(404)}
)
def read_streams(
    core: CoreDep, actor: ActorDep, stream_id: StreamId | None = None
) -> StreamView | list[StreamView]:
    """One stream's configuration (`stream_id`), or every stream's."""
    if stream_id is None:
        return core.shared_signals.streams(actor)
    return core.shared_signals.stream(actor, stream_id)


@router.delete("/streams", status_code=204, responses={**ADMIN, **responses(404)})
def delete_stream(stream_id: StreamId, core: CoreDep, actor: ActorDep) -> Response:
    core.shared_signals.delete_stream(actor, stream_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/status", response_model=StreamStatusView, responses={**ADMIN, **responses(404)})
def stream_status(stream_id: StreamId, core: CoreDep, actor: ActorDep) -> StreamStatusView:
    return core.shared_signals.status(actor, stream_id)


@router.post("/verify", status_code=204, responses={**ADMIN, **responses(404, 413)})
def verify_stream(body: VerifyBody, core: CoreDep, actor: ActorDep) -> Response:
    """Push a verification event carrying `state` to the stream's receiver."""
    core.shared_signals.verify(actor, body.stream_id, body.state)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/receive",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/secevent+jwt": {"schema": {"type": "string"}}},
        }
    },
    responses={
        **{
            code: {"model": SetError, "description": f"{meaning} (RFC 8935's error)"}
            for code, meaning in _REFUSALS.items()
        },
        **responses(413),
    },
)
async def receive(request: Request, core: CoreDep) -> Response:
    """Where the company's IdP pushes SETs (RFC 8935). 202 once acted on; a bad SET gets
    its RFC 8935 error and changes nothing."""
    body = await request.body()
    try:
        if len(body) > MAX_SET_BYTES:
            raise SetRejected("invalid_request", f"a SET is at most {MAX_SET_BYTES} bytes")
        token = body.decode("ascii").strip()
        authorization = request.headers.get("authorization")
        await run_in_threadpool(core.shared_signals.receive, token, authorization)
    except UnicodeDecodeError:
        return _refused(SetRejected("invalid_request", "the body is not a compact JWT"))
    except SetRejected as refused:
        return _refused(refused)
    return Response(status_code=status.HTTP_202_ACCEPTED)


def _refused(refused: SetRejected) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else None
    content = {"err": refused.err, "description": refused.description}
    return JSONResponse(content, status_code=refused.status, headers=headers)
