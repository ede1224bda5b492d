"""Passkeys: the page that lists and adds them, and the JSON steps of the two WebAuthn
ceremonies the browser's script runs (adding a passkey; a step-up before a decision acts).

Each ceremony step is a POST carrying the CSRF token in its header; its answer is JSON, and a
refusal is JSON too (`{"error": "..."}`, with the status the API would give), so the script can
say what went wrong beside the button instead of leaving the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sekisho.api.problems import status_of
from sekisho.domain.errors import SekishoError
from sekisho.sso.passkeys import MAX_CREDENTIAL_JSON, PasskeysUnavailable, RelyingParty
from sekisho.web import flash, render
from sekisho.web.routing import WebRoute
from sekisho.web.session import CoreDep, SignedIn, SignedInPost

router = APIRouter(route_class=WebRoute)

PasskeyId = Annotated[int, Path(ge=1, le=2**62)]


class Answer(BaseModel):
    """What the authenticator answered (PublicKeyCredential.toJSON(), as text)."""

    model_config = ConfigDict(extra="forbid")
    credential: str = Field(max_length=MAX_CREDENTIAL_JSON)
    name: str = Field(default="", max_length=200)


@router.get("/passkeys")
def passkeys_page(request: Request, core: CoreDep, user: SignedIn) -> Response:
    rp = RelyingParty.of(core.settings.public_url)
    context: dict[str, Any] = {
        "passkeys": core.passkeys.passkeys(user.actor),
        "rp_id": rp.id if rp else None,
        "rp_origin": rp.origins[0] if rp else None,
    }
    return render.page(request, "passkeys.html", user, **context)


@router.post("/passkeys/options")
def registration_options(core: CoreDep, user: SignedInPost) -> Response:
    return _ceremony(lambda: core.passkeys.begin_registration(user.actor, user.display_name))


@router.post("/passkeys/register")
def register(core: CoreDep, user: SignedInPost, answer: Annotated[Answer, Body()]) -> Response:
    return _ceremony(
        lambda: {"id": core.passkeys.register(user.actor, answer.credential, answer.name)}
    )


@router.post("/passkeys/{passkey_id}/remove")
def remove(request: Request, core: CoreDep, user: SignedInPost, passkey_id: PasskeyId) -> Response:
    core.passkeys.remove(user.actor, passkey_id)
    return flash.redirect(request, "/passkeys", f"Passkey #{passkey_id} removed.")


@router.post("/step-up/passkey/options")
def step_up_options(core: CoreDep, user: SignedInPost) -> Response:
    return _ceremony(lambda: core.passkeys.begin_step_up(user.actor))


@router.post("/step-up/passkey")
def step_up(core: CoreDep, user: SignedInPost, answer: Annotated[Answer, Body()]) -> Response:
    return _ceremony(lambda: {"at": core.passkeys.step_up(user.actor, answer.credential)})


def _ceremony(step: Callable[[], str | dict[str, Any]]) -> Response:
    try:
        result = step()
    except SekishoError as error:
        return JSONResponse({"error": error.message, "code": error.code}, status_of(error))
    except PasskeysUnavailable as error:
        return JSONResponse({"error": str(error), "code": "passkeys-unavailable"}, 409)
    if isinstance(result, str):  # the options, JSON already
        return Response(result, media_type="application/json")
    return JSONResponse({key: str(value) for key, value in result.items()})
