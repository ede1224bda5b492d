"""The access model as a picture, with the same facts as tables beside it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sekisho.domain.timespec import format_duration
from sekisho.model.reach import people_reach, reachability
from sekisho.web import picture, render
from sekisho.web.routing import WebRoute
from sekisho.web.session import CoreDep, SignedIn

router = APIRouter(route_class=WebRoute)


@router.get("/model")
def model_page(request: Request, core: CoreDep, user: SignedIn) -> Response:
    model_id, model = core.models.current()
    reaches = reachability(model)
    return render.page(
        request,
        "model.html",
        user,
        model_id=model_id,
        pic=picture.draw(model),
        reaches=reaches,
        only_by_request=[r for r in reaches if r.only_through_request],
        people=people_reach(model),
        zone=model.settings.timezone,
        format_duration=format_duration,
    )
