"""Who is looking, as the domain's rules see them: a name, standing groups, admin or not."""

from __future__ import annotations

from sekisho.domain.access import AccessModel
from sekisho.domain.actions import Viewer
from sekisho.domain.actor import Actor
from sekisho.services import permissions


def viewer_of(model: AccessModel, actor: Actor) -> Viewer:
    return Viewer(
        name=actor.name,
        standing_groups=frozenset(g.name for g in model.standing_groups_of(actor.name)),
        admin=permissions.is_admin(model, actor),
    )
