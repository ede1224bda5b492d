"""What the identity providers say of people's groups, as the model's standing groups read it:
the SCIM directory's groups and each user's last groups claim, and the one version number
that moves whenever either changes (`StoredModels` reads it with the model's own version, in
the same statement, so a decision costs no extra statement)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, ScalarSelect, func, select, update
from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel
from sekisho.domain.sso import model_user_named
from sekisho.store.tables import (
    DirectoryGroupRow,
    DirectoryStateRow,
    DirectoryUserRow,
    IdpClaimedGroupsRow,
)

_STATE = 1


def version() -> ScalarSelect[Any]:
    """The directory's version, as a column of another select (0 before any change)."""
    found = select(DirectoryStateRow.version).where(DirectoryStateRow.id == _STATE)
    return select(func.coalesce(found.scalar_subquery(), 0)).scalar_subquery()


def changed(session: Session) -> None:
    """What the IdPs say of groups changed in this transaction: every process reads it anew."""
    bumped = session.execute(
        update(DirectoryStateRow)
        .where(DirectoryStateRow.id == _STATE)
        .values(version=DirectoryStateRow.version + 1)
    )
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        session.add(DirectoryStateRow(id=_STATE, version=1))
        session.flush()


def claimed_groups(
    session: Session, user: str, issuer: str, groups: Iterable[str], at: datetime
) -> None:
    """Keep the groups claim of `user`'s sign-in; the directory changes only if it did."""
    names = sorted({g.casefold() for g in groups})
    row = session.get(IdpClaimedGroupsRow, user)
    if row is not None and row.groups == names and row.issuer == issuer:
        row.seen_at = at
        return
    if row is None:
        row = IdpClaimedGroupsRow(user=user)
        session.add(row)
    row.issuer, row.groups, row.seen_at = issuer, names, at
    changed(session)


def idp_group_members(db: Session | Connection, model: AccessModel) -> dict[str, set[str]]:
    """For each IdP group a standing group of `model` takes members from (case-folded), the
    model users in it: active directory users who name one, and users whose last groups claim
    had it. No statement when no group names an IdP group."""
    wanted = {name for group in model.groups for name in group.idp_groups}
    if not wanted:
        return {}
    found: dict[str, set[str]] = defaultdict(set)
    for name, person in _directory_members(db, model, wanted):
        found[name].add(person)
    claims = db.execute(select(IdpClaimedGroupsRow.user, IdpClaimedGroupsRow.groups))
    for user, groups in claims:
        if model.user(user) is None:
            continue  # no longer in the model: nobody to add
        for name in set(groups) & wanted:
            found[name].add(user)
    return found


def _directory_members(
    db: Session | Connection, model: AccessModel, wanted: set[str]
) -> Iterable[tuple[str, str]]:
    groups = db.execute(
        select(DirectoryGroupRow.name_key, DirectoryGroupRow.idp, DirectoryGroupRow.resource).where(
            DirectoryGroupRow.name_key.in_(wanted)
        )
    ).all()
    member_ids = {
        m.get("value") for _, _, resource in groups for m in resource.get("members") or []
    }
    users = db.execute(
        select(DirectoryUserRow.id, DirectoryUserRow.idp, DirectoryUserRow.resource).where(
            DirectoryUserRow.id.in_(member_ids), DirectoryUserRow.active.is_(True)
        )
    ).all()
    persons = {(idp, uid): _person(model, resource) for uid, idp, resource in users}
    for name, idp, resource in groups:
        for member in resource.get("members") or []:
            person = persons.get((idp, member.get("value")))
            if person is not None:
                yield name, person


def _person(model: AccessModel, resource: dict[str, Any]) -> str | None:
    """The model user a stored directory user names (its userName, or a unique e-mail)."""
    names = [resource.get("userName"), *(e.get("value") for e in resource.get("emails") or [])]
    for name in names:
        found = model_user_named(model, name) if isinstance(name, str) and name else None
        if found is not None:
            return found
    return None
