"""The kill switch: place a lock (one act that ends what it covers), list, show, remove."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from sekisho.api.deps import ActorDep, CoreDep
from sekisho.api.problems import responses
from sekisho.api.schemas import LockBody
from sekisho.services.views import LockView, PlacedLockView

router = APIRouter(prefix="/locks", tags=["locks"], responses=responses(401, 403, 422, 503))

LockId = Annotated[int, Path(ge=1, le=2**62, description="The lock's number")]


@router.post(
    "",
    response_model=PlacedLockView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(413),
)
def place_lock(body: LockBody, core: CoreDep, actor: ActorDep) -> PlacedLockView:
    """Lock a user, target, group or role now: what it covers ends, and is refused with the
    reason until the lock runs out or is removed. What ended does not come back."""
    return core.locks.place(
        actor, body.kind, body.subject, body.reason, until=body.until, duration=body.for_
    )


@router.get("", response_model=list[LockView])
def list_locks(core: CoreDep, actor: ActorDep, all: bool = False) -> list[LockView]:
    """Newest first: the locks in force, or (`all`) every lock ever placed."""
    return core.locks.list_locks(actor, everything=all)


@router.get("/{lock_id}", response_model=LockView, responses=responses(404))
def show_lock(lock_id: LockId, core: CoreDep, actor: ActorDep) -> LockView:
    return core.locks.get(actor, lock_id)


@router.delete("/{lock_id}", response_model=LockView, responses=responses(404, 409))
def remove_lock(lock_id: LockId, core: CoreDep, actor: ActorDep) -> LockView:
    """Lift a lock early. Nothing it ended comes back."""
    return core.locks.remove(actor, lock_id)
