"""Dependencies for the routers: the core, the caller, who they act as, the gateway's CA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sekisho.bootstrap import Core
from sekisho.domain.actor import Actor
from sekisho.domain.errors import AuthenticationFailed
from sekisho.domain.identity import Principal

_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/login")


def get_core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


# The CA that signs the gateway's certificate, as PEM, or None when sekisho knows none.
GatewayCa = Callable[[], str | None]


def no_gateway_ca() -> str | None:
    return None


def get_gateway_ca(request: Request) -> GatewayCa:
    read: GatewayCa = request.app.state.gateway_ca
    return read


def client_source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def get_principal(
    core: Annotated[Core, Depends(get_core)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("log in first: no bearer token was sent")
    return core.identity.authenticate(credentials.credentials)


def get_actor(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> Actor:
    return Actor(principal.name, client_source(request), principal.token_id)


CoreDep = Annotated[Core, Depends(get_core)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
ActorDep = Annotated[Actor, Depends(get_actor)]
SourceDep = Annotated[str, Depends(client_source)]
GatewayCaDep = Annotated[GatewayCa, Depends(get_gateway_ca)]
