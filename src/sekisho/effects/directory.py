"""What the SCIM directory's events leave behind: an audit entry for every change an IdP
made and for every token an admin gave one. (A leaver's lock is recorded as that lock's own
events, in the same transaction.)"""

from __future__ import annotations

from sekisho.domain.directory import provisioner
from sekisho.domain.events import DirectoryGroupChanged, DirectoryUserChanged, ScimTokenIssued
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent, DetailValue
from sekisho.services.events import Event


def user_changed(fx: EffectContext, e: DirectoryUserChanged) -> list[Event]:
    by = provisioner(e.idp)
    detail: dict[str, DetailValue] = {
        "idp": e.idp,
        "directory_id": e.directory_id,
        "user_name": e.user_name[:256],
    }
    subject = e.person or e.user_name[:128]
    action = f"scim.user_{e.change.value}"
    fx.audit(e.at, AuditEvent(action, by.name, by.source, subject=subject, detail=detail))
    return []


def group_changed(fx: EffectContext, e: DirectoryGroupChanged) -> list[Event]:
    by = provisioner(e.idp)
    detail: dict[str, DetailValue] = {
        "idp": e.idp,
        "directory_id": e.directory_id,
        "group": e.name[:256],
        "count": e.members,
    }
    action = f"scim.group_{e.change.value}"
    fx.audit(e.at, AuditEvent(action, by.name, by.source, detail=detail))
    return []


def token_issued(fx: EffectContext, e: ScimTokenIssued) -> list[Event]:
    detail: dict[str, DetailValue] = {"idp": e.idp}
    fx.audit(e.at, AuditEvent("scim.token_issued", e.actor.name, e.actor.source, detail=detail))
    return []


HANDLERS: dict[type, Handler] = {
    DirectoryUserChanged: user_changed,
    DirectoryGroupChanged: group_changed,
    ScimTokenIssued: token_issued,
}
