from __future__ import annotations

from fastapi import APIRouter

from sekisho.api.deps import ActorDep, CoreDep
from sekisho.api.problems import responses
from sekisho.api.schemas import AccessOut, AccessQuery

router = APIRouter(tags=["decisions"], responses=responses(401, 503))


@router.post("/decisions", response_model=AccessOut, responses=responses(403, 413, 422))
def decide(body: AccessQuery, core: CoreDep, actor: ActorDep) -> AccessOut:
    """May USER assume ROLE / connect TARGET now? Denials are audited."""
    d = core.authz.check(actor, body.user, body.verb, body.object)
    return AccessOut(
        allowed=d.allowed,
        user=d.user,
        verb=d.verb,
        object=d.object,
        reason=d.reason,
        group=d.group,
        grant_id=d.grant_id,
        grant_end=d.grant_end,
        standing=d.standing,
        routes=[{"template": r.template, "group": r.group} for r in d.routes],
    )
