"""Where Slack sends what people do in it: `/slack/interactions` (the app's interactivity
request URL: buttons and the reject modal) and `/slack/commands` (the `/sekisho` slash
command). Neither takes a sekisho login: Slack's signature over the body is the credential,
checked before anything is read (`services/slack.py`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from sekisho.api.deps import CoreDep
from sekisho.services.slack import MAX_BODY, Answer

router = APIRouter(prefix="/slack", include_in_schema=False)


@router.post("/interactions")
async def interactions(request: Request, core: CoreDep) -> Response:
    body = await _body(request)
    answer = await run_in_threadpool(core.slack.interaction, body, dict(request.headers))
    return _answer(answer)


@router.post("/commands")
async def commands(request: Request, core: CoreDep) -> Response:
    body = await _body(request)
    answer = await run_in_threadpool(core.slack.command, body, dict(request.headers))
    return _answer(answer)


async def _body(request: Request) -> bytes:
    body = await request.body()
    return body[: MAX_BODY + 1]  # over the limit: refused as unsigned, never parsed


def _answer(answer: Answer) -> Response:
    if answer.body is None:
        return Response(status_code=answer.status)
    return JSONResponse(answer.body, status_code=answer.status)
