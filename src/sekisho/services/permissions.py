"""Who may see and do what in sekisho itself. Every operation asks here; nothing decides twice.

(Access to *production* — assume a role, connect to a target — is `services.access_decisions`.)
"""

from __future__ import annotations

from sekisho.domain.access import AccessModel
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Forbidden
from sekisho.store.tables import RequestRow


def is_admin(model: AccessModel, actor: Actor) -> bool:
    return actor.is_system or model.is_admin(actor.name)


def is_auditor(model: AccessModel, actor: Actor) -> bool:
    return actor.is_system or model.is_auditor(actor.name)


def require_admin(model: AccessModel, actor: Actor, doing: str) -> None:
    if not is_admin(model, actor):
        raise Forbidden(f"only admins may {doing}")


def require_auditor(model: AccessModel, actor: Actor, doing: str) -> None:
    if not is_auditor(model, actor):
        raise Forbidden(f"only auditors and admins may {doing}")


def may_lock(model: AccessModel, actor: Actor) -> bool:
    return actor.is_system or model.may_lock(actor.name)


def require_lock(model: AccessModel, actor: Actor, doing: str) -> None:
    if not may_lock(model, actor):
        raise Forbidden(f"only admins and groups with the lock permission may {doing}")


def may_see_locks(model: AccessModel, actor: Actor) -> bool:
    """Every lock: those who may place them, auditors and admins (anyone sees their own)."""
    return may_lock(model, actor) or is_auditor(model, actor)


def approver_groups_of(model: AccessModel, template: str) -> frozenset[str]:
    found = model.template(template)
    return frozenset(level.approvers for level in found.approval) if found else frozenset()


def may_approve_some_level(model: AccessModel, actor: Actor, template: str) -> bool:
    mine = {g.name for g in model.standing_groups_of(actor.name)}
    return bool(approver_groups_of(model, template) & mine)


def may_view_request(model: AccessModel, actor: Actor, row: RequestRow) -> bool:
    return (
        actor.name in (row.requester, row.subject)
        or is_auditor(model, actor)
        or may_approve_some_level(model, actor, row.template)
    )


def may_ask_about(model: AccessModel, actor: Actor, user: str) -> bool:
    """Anyone may ask what they themselves can reach; auditors and admins about anyone."""
    return actor.name == user or is_auditor(model, actor)
