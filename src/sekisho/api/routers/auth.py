from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from fastapi.responses import JSONResponse

from sekisho.api.deps import ActorDep, CoreDep, PrincipalDep, SourceDep
from sekisho.api.problems import responses
from sekisho.api.schemas import (
    DevicePollBody,
    DeviceStartOut,
    DeviceWaitingOut,
    Line,
    LoginBody,
    SsoCodeBody,
    TokenOut,
)
from sekisho.operations.device_sign_in import DeviceWaiting
from sekisho.services.views import WhoAmI

router = APIRouter(tags=["identity"], responses=responses(401, 503))


@router.post("/auth/login", response_model=TokenOut, responses=responses(413, 422, 429))
async def login(body: LoginBody, core: CoreDep, source: SourceDep) -> TokenOut:
    """Password + TOTP code -> a short-lived bearer token.

    On the event loop: a sign-in waits for its password hash's turn and its refusal's delay
    without holding one of the threads the other routes run on, so a flood of bogus sign-ins
    does not stall the API.
    """
    issued = await core.identity.login_async(body.user, body.password, body.otp, source)
    return TokenOut(token=issued.token, user=issued.user, expires_at=issued.expires_at)


@router.post("/auth/sso/token", response_model=TokenOut, responses=responses(403, 413, 422))
def sso_token(body: SsoCodeBody, core: CoreDep, source: SourceDep) -> TokenOut:
    """`sekisho login --sso`: the one-time code of a sign-in through the identity provider,
    and the PKCE verifier its challenge was made from -> a short-lived bearer token. The code
    is good once, for two minutes; a locked user is refused (403)."""
    issued = core.idp_sign_in.redeem(body.code, body.code_verifier, source)
    return TokenOut(token=issued.token, user=issued.user, expires_at=issued.expires_at)


@router.post("/auth/sso/device", response_model=DeviceStartOut, responses=responses(404, 413, 429))
def sso_device_start(core: CoreDep, source: SourceDep) -> DeviceStartOut:
    """`sekisho login --device` (RFC 8628): a user code to enter at the identity provider
    from any browser, and a handle to poll with."""
    started = core.idp_sign_in.start_device(source)
    return DeviceStartOut(
        handle=started.handle,
        user_code=started.user_code,
        verification_uri=started.verification_uri,
        verification_uri_complete=started.verification_uri_complete,
        expires_at=started.expires_at,
        interval=started.interval,
    )


@router.post(
    "/auth/sso/device/token",
    response_model=TokenOut,
    responses={
        **responses(403, 404, 413, 422),
        202: {"model": DeviceWaitingOut, "description": "Not approved yet: poll again"},
    },
)
def sso_device_token(body: DevicePollBody, core: CoreDep, source: SourceDep) -> Response:
    """Poll a device sign-in: the token once approved at the IdP (200), else 202 with the
    interval to wait. Denied, expired or unknown: 401; a locked user: 403."""
    result = core.idp_sign_in.poll_device(body.handle, source)
    if isinstance(result, DeviceWaiting):
        waiting = DeviceWaitingOut(interval=result.interval)
        return JSONResponse(waiting.model_dump(), status_code=status.HTTP_202_ACCEPTED)
    issued = TokenOut(token=result.token, user=result.user, expires_at=result.expires_at)
    return JSONResponse(issued.model_dump(mode="json"))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(core: CoreDep, principal: PrincipalDep, source: SourceDep) -> None:
    core.identity.logout(principal, source)


@router.get("/me", response_model=WhoAmI)
def whoami(core: CoreDep, actor: ActorDep, principal: PrincipalDep) -> WhoAmI:
    return core.identity.whoami(actor, principal)


@router.get("/users/{name}", response_model=WhoAmI, responses=responses(403, 404, 422))
def show_user(
    name: Annotated[Line, Path(max_length=128)], core: CoreDep, actor: ActorDep
) -> WhoAmI:
    """A user's groups, active grants and the provider's directory (self, or auditors)."""
    return core.identity.describe(actor, name, directory=True)
