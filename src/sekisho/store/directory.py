"""What the identity providers say of people's groups, as the model's standing groups read it:
the SCIM directory's groups and each user's last groups claim, and the one version number
that moves whenever either changes (`StoredModels` reads it with the model's own version, in
the same statement, so a decision costs no extra statement)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, ScalarSelect, select, update
from sqlalchemy.orm import Session

from sekisho.domain.access import AccessModel
from sekisho.domain.directory import with_admitted, with_idp_members
from sekisho.domain.sso import model_user_named
from sekisho.domain.text import NAME
from sekisho.store.tables import (
    DirectoryGroupRow,
    DirectoryStateRow,
    DirectoryUserRow,
    IdpClaimedGroupsRow,
)

_STATE = 1


def version() -> ScalarSelect[int]:
    """The directory's version, as a column of another select (NULL while it has no row:
    still a version the next change moves away from)."""
    return select(DirectoryStateRow.version).where(DirectoryStateRow.id == _STATE).scalar_subquery()


def changed(session: Session) -> None:
    """What the IdPs say of groups changed in this transaction: every process reads it anew.
    The row is the migration's; one emptied since (a store reset) is made again."""
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


def overlay(db: Session | Connection, base: AccessModel) -> AccessModel:
    """`base` as the IdPs complete it: the people it admits (`identity.admit`), then each
    standing group's members from the IdP groups it names. No statement when it names none."""
    admit = base.identity.admit_idp_groups
    mapped = {name for group in base.groups for name in group.idp_groups}
    if not admit and not mapped:
        return base
    members = _members_of(db, admit | mapped)
    claims = [(user, set(groups)) for user, groups in db.execute(_CLAIMS)]
    model = with_admitted(base, _admitted(base, admit, members, claims))
    found: dict[str, set[str]] = defaultdict(set)
    for name, resource in members:
        person = _person(model, resource)
        if name in mapped and person is not None:
            found[name].add(person)
    for user, groups in claims:
        if model.user(user) is not None:
            for name in groups & mapped:
                found[name].add(user)
    return with_idp_members(model, found)


_CLAIMS = select(IdpClaimedGroupsRow.user, IdpClaimedGroupsRow.groups)


def _admitted(
    base: AccessModel,
    admit: set[str] | frozenset[str],
    members: list[tuple[str, dict[str, Any]]],
    claims: list[tuple[str, set[str]]],
) -> list[str]:
    """Who the IdPs make users though the model does not list them: members of an admitted
    directory group (by their userName), and people whose last groups claim had one."""
    found = [
        resource["userName"]
        for name, resource in members
        if name in admit and _person(base, resource) is None
    ]
    found += [user for user, groups in claims if groups & admit and base.user(user) is None]
    return [name for name in found if isinstance(name, str) and NAME.fullmatch(name)]


def _members_of(
    db: Session | Connection, wanted: set[str] | frozenset[str]
) -> list[tuple[str, dict[str, Any]]]:
    """(group, the stored resource of an active member) for the directory groups named."""
    groups = db.execute(
        select(DirectoryGroupRow.name_key, DirectoryGroupRow.idp, DirectoryGroupRow.resource).where(
            DirectoryGroupRow.name_key.in_(wanted)
        )
    ).all()
    ids = {m.get("value") for _, _, resource in groups for m in resource.get("members") or []}
    users = db.execute(
        select(DirectoryUserRow.id, DirectoryUserRow.idp, DirectoryUserRow.resource).where(
            DirectoryUserRow.id.in_(ids), DirectoryUserRow.active.is_(True)
        )
    ).all()
    by_id = {(idp, uid): resource for uid, idp, resource in users}
    return [
        (name, by_id[(idp, m.get("value"))])
        for name, idp, resource in groups
        for m in resource.get("members") or []
        if (idp, m.get("value")) in by_id
    ]


def _person(model: AccessModel, resource: dict[str, Any]) -> str | None:
    """The model user a stored directory user names (its userName, or a unique e-mail)."""
    names = [resource.get("userName"), *(e.get("value") for e in resource.get("emails") or [])]
    for name in names:
        found = model_user_named(model, name) if isinstance(name, str) and name else None
        if found is not None:
            return found
    return None
