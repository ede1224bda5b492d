"""The SCIM directory's use cases: an IdP creates, replaces, patches and deletes its users and
groups; an admin gives an IdP its bearer token.

Every write is checked before anything changes (the body against the schema, a userName or
a group name already taken in this IdP's directory, a member that is not this IdP's user)
and lands in one transaction with its audit entry. Each IdP sees only its own resources: a
token of one IdP finds nothing of another's (404).

A user's `active` is mirrored by a lock. When a write leaves a user that names someone in the
model inactive (or deletes it), the IdP places a user lock on that person in the same
transaction as the write (`PlaceLock` with the write as its cause): their grants end, their
sessions are cut, their logins and role sessions end. When a write makes them active again,
the locks this IdP placed on them are lifted; what ended stays ended.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol, TypeVar

from scim2_models import (
    Context,
    Group,
    InvalidValueException,
    NotFoundException,
    UnauthorizedException,
    UniquenessException,
    User,
)
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.domain.directory import (
    DirectoryChange,
    change_of_activity,
    check_idp_name,
    lock_reason,
    new_scim_token,
    provisioner,
)
from sekisho.domain.events import DirectoryGroupChanged, DirectoryUserChanged, ScimTokenIssued
from sekisho.domain.identity import token_id
from sekisho.domain.locks import LockKind
from sekisho.domain.sso import model_user_named
from sekisho.operations.locks import PlaceLock, RemoveLock
from sekisho.ports import ModelSource
from sekisho.scim import resources as scim
from sekisho.services import permissions
from sekisho.store import directory as stored_directory
from sekisho.store import locks as stored_locks
from sekisho.store.tables import DirectoryGroupRow, DirectoryUserRow, ScimTokenRow
from sekisho.store.unit_of_work import Store, UnitOfWork

Body = dict[str, Any]
Shown = Callable[[], Body]  # a matched resource, shown (dumped) only if its page is asked for
UserChange = Callable[["User[Any]"], "User[Any]"]


class Provisioning(Protocol):
    """What an IdP may do with one resource type (users, groups) in its own directory."""

    def create(self, idp: str, body: object) -> Body: ...

    def get(self, idp: str, resource_id: str, params: scim.Chosen = None) -> Body: ...

    def search(
        self, idp: str, text: str | None, start: int, count: int, params: scim.Chosen = None
    ) -> Page: ...

    def replace(self, idp: str, resource_id: str, body: object) -> Body: ...

    def patch(self, idp: str, resource_id: str, body: object) -> Body: ...

    def delete(self, idp: str, resource_id: str) -> None: ...


@dataclass(frozen=True)
class Page:
    """One page of a search: what matched in all, where the page starts (1-based), and it."""

    total: int
    start: int
    resources: list[Body]


class ScimTokens:
    """The bearer token each IdP provisions with: issued by an admin, kept as its SHA-256."""

    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def issue(self, actor: Actor, idp: str) -> str:
        """A new token for `idp` (shown once); the one it had stops working."""
        idp = check_idp_name(idp)
        token = new_scim_token()
        now = self._clock.now()
        with self._store.write() as uow:
            permissions.require_admin(self._models.model(uow.session), actor, "issue SCIM tokens")
            row = uow.session.get(ScimTokenRow, idp)
            if row is None:
                row = ScimTokenRow(idp=idp)
                uow.session.add(row)
            row.token_hash, row.created_at, row.created_by = token_id(token), now, actor.name
            uow.record(ScimTokenIssued(now, idp, actor))
        return token

    def idp_of(self, authorization: str | None) -> str:
        """The IdP whose token the `Authorization: Bearer` header carries; 401 otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.casefold() != "bearer" or not token.strip() or len(token) > 200:
            raise UnauthorizedException(detail="a SCIM bearer token is required")
        with self._store.read() as s:
            idp = s.scalar(
                select(ScimTokenRow.idp).where(ScimTokenRow.token_hash == token_id(token.strip()))
            )
        if idp is None:
            raise UnauthorizedException(detail="this SCIM token is not valid")
        return idp


@dataclass(frozen=True)
class _Written:
    """What a user write leaves: the row's new resource, and whether it is active."""

    resource: User[Any]
    active: bool


class ProvisionUsers:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        place: PlaceLock,
        remove: RemoveLock,
        base_url: str,
    ) -> None:
        self._store, self._clock, self._models = store, clock, models
        self._place, self._remove, self._base = place, remove, base_url.rstrip("/")

    def create(self, idp: str, body: object) -> Body:
        user = scim.parse(User, body, Context.RESOURCE_CREATION_REQUEST)
        new_id = str(uuid.uuid4())

        def write(uow: UnitOfWork, now: datetime) -> _Written:
            _check_free_user_name(uow.session, idp, user, None)
            row = DirectoryUserRow(id=new_id, idp=idp, created_at=now, version=0)
            uow.session.add(row)
            return self._store_user(uow, row, user, DirectoryChange.CREATED, now)

        written = self._write(idp, user, None, write)
        return self._shown(
            written.resource, self._row(idp, new_id), Context.RESOURCE_CREATION_RESPONSE
        )

    def get(self, idp: str, user_id: str, params: scim.Chosen = None) -> Body:
        row = self._row(idp, user_id)
        user = scim.stored(User, row.resource)
        return self._shown(user, row, Context.RESOURCE_QUERY_RESPONSE, params)

    def search(
        self, idp: str, text: str | None, start: int, count: int, params: scim.Chosen = None
    ) -> Page:
        return _page(self.matching(idp, text, params), start, count)

    def matching(self, idp: str, text: str | None, params: scim.Chosen = None) -> list[Shown]:
        """This IdP's users the filter matches, oldest first, each shown when asked for."""
        show = partial(self._shown, params=params)
        return _matching(self._store, User, DirectoryUserRow.user_key, "userName", idp, text, show)

    def replace(self, idp: str, user_id: str, body: object) -> Body:
        user = scim.parse(User, body, Context.RESOURCE_REPLACEMENT_REQUEST)
        return self._change(idp, user_id, lambda _old: user, DirectoryChange.REPLACED)

    def patch(self, idp: str, user_id: str, body: object) -> Body:
        return self._change(idp, user_id, _patching(User, body), DirectoryChange.PATCHED)

    def delete(self, idp: str, user_id: str) -> None:
        """Gone from the directory: the person it named is locked, as a deactivation."""
        before = self._row(idp, user_id)
        gone = scim.stored(User, before.resource)

        def write(uow: UnitOfWork, now: datetime) -> _Written:
            row = _row_of(uow.session, DirectoryUserRow, idp, user_id, lock=True)
            uow.session.delete(row)
            stored_directory.changed(uow.session)
            person = self._person(uow.session, gone)
            name = gone.user_name or ""
            uow.record(
                DirectoryUserChanged(now, idp, user_id, name, DirectoryChange.DELETED, person)
            )
            return _Written(gone, active=False)

        self._write(idp, gone, before.active, write, change=DirectoryChange.DELETED)

    # -- the one way a user is written --------------------------------------------------------

    def _change(
        self,
        idp: str,
        user_id: str,
        change: Callable[[User[Any]], User[Any]],
        kind: DirectoryChange,
    ) -> Body:
        before = self._row(idp, user_id)
        planned = change(scim.stored(User, before.resource))

        def write(uow: UnitOfWork, now: datetime) -> _Written:
            row = _row_of(uow.session, DirectoryUserRow, idp, user_id, lock=True)
            new = change(scim.stored(User, row.resource))
            _check_free_user_name(uow.session, idp, new, user_id)
            return self._store_user(uow, row, new, kind, now)

        written = self._write(idp, planned, before.active, write)
        context = Context.RESOURCE_REPLACEMENT_RESPONSE
        return self._shown(written.resource, self._row(idp, user_id), context)

    def _write(
        self,
        idp: str,
        planned: User[Any],
        was_active: bool | None,
        write: Callable[[UnitOfWork, datetime], _Written],
        change: DirectoryChange | None = None,
    ) -> _Written:
        """Run `write` in the transaction its consequence needs: a lock's, when the user
        names a model user and ends inactive; otherwise its own, then lift this IdP's locks
        on a person made active again."""
        active = planned.active is not False and change is not DirectoryChange.DELETED
        person = self._person(None, planned)
        done: list[_Written] = []
        if person is not None and not active and not self._locks_by(idp, person):
            kind = change or change_of_activity(was_active, active) or DirectoryChange.DEACTIVATED
            self._place.execute(
                provisioner(idp),
                LockKind.USER.value,
                person,
                lock_reason(idp, kind),
                cause=lambda uow, now: done.append(write(uow, now)),
            )
            return done[0]
        with self._store.write() as uow:
            written = write(uow, self._clock.now())
        if person is not None and written.active:
            for lock_id in self._locks_by(idp, person):
                self._remove.execute(provisioner(idp), lock_id)
        return written

    def _store_user(
        self,
        uow: UnitOfWork,
        row: DirectoryUserRow,
        user: User[Any],
        kind: DirectoryChange,
        now: datetime,
    ) -> _Written:
        active = user.active is not False
        turned = change_of_activity(row.active if row.version else None, active)
        row.user_key = (user.user_name or "").casefold()
        row.external_id = user.external_id
        row.active = active
        row.resource = scim.storable(user)
        row.updated_at, row.version = now, row.version + 1
        uow.session.flush()
        stored_directory.changed(uow.session)  # standing groups may take members from it
        person = self._person(uow.session, user)
        name = user.user_name or ""
        uow.record(DirectoryUserChanged(now, row.idp, row.id, name, turned or kind, person))
        return _Written(user, active)

    def _person(self, session: Session | None, user: User[Any]) -> str | None:
        """The model user this directory user names (by userName, or a unique e-mail)."""
        model = self._models.model(session) if session is not None else self._models.model()
        for name in [user.user_name, *(e.value for e in user.emails or [] if e.value)]:
            found = model_user_named(model, name) if name else None
            if found is not None:
                return found
        return None

    def _locks_by(self, idp: str, person: str) -> list[int]:
        """The user locks in force on `person` that this IdP placed."""
        by = provisioner(idp).name
        with self._store.read() as s:
            found = stored_locks.in_force(s, self._clock.now())
        return [k.id for k in found if k.covers_user(person) and k.created_by == by]

    def _row(self, idp: str, user_id: str) -> DirectoryUserRow:
        with self._store.read() as s:
            row = _row_of(s, DirectoryUserRow, idp, user_id)
            s.expunge(row)
            return row

    def _shown(
        self, user: User[Any], row: DirectoryUserRow, context: Context, params: scim.Chosen = None
    ) -> Body:
        stamp = _stamp(row, "User", f"{self._base}/Users/{row.id}")
        return scim.shown(user, stamp, context, params)


class ProvisionGroups:
    """Groups as the IdP keeps them, with their members (this IdP's users, by id)."""

    def __init__(self, store: Store, clock: Clock, base_url: str) -> None:
        self._store, self._clock, self._base = store, clock, base_url.rstrip("/")

    def create(self, idp: str, body: object) -> Body:
        group = scim.parse(Group, body, Context.RESOURCE_CREATION_REQUEST)
        new_id = str(uuid.uuid4())
        with self._store.write() as uow:
            now = self._clock.now()
            row = DirectoryGroupRow(id=new_id, idp=idp, created_at=now, version=0)
            self._store_group(uow, row, group, DirectoryChange.CREATED, now)
        return self.get(idp, new_id, context=Context.RESOURCE_CREATION_RESPONSE)

    def get(
        self,
        idp: str,
        group_id: str,
        params: scim.Chosen = None,
        context: Context = Context.RESOURCE_QUERY_RESPONSE,
    ) -> Body:
        with self._store.read() as s:
            row = _row_of(s, DirectoryGroupRow, idp, group_id)
            return self._shown(scim.stored(Group, row.resource), row, context, params)

    def search(
        self, idp: str, text: str | None, start: int, count: int, params: scim.Chosen = None
    ) -> Page:
        return _page(self.matching(idp, text, params), start, count)

    def matching(self, idp: str, text: str | None, params: scim.Chosen = None) -> list[Shown]:
        """This IdP's groups the filter matches, oldest first, each shown when asked for."""
        show = partial(self._shown, params=params)
        key = DirectoryGroupRow.name_key
        return _matching(self._store, Group, key, "displayName", idp, text, show)

    def replace(self, idp: str, group_id: str, body: object) -> Body:
        group = scim.parse(Group, body, Context.RESOURCE_REPLACEMENT_REQUEST)
        return self._change(idp, group_id, lambda _old: group, DirectoryChange.REPLACED)

    def patch(self, idp: str, group_id: str, body: object) -> Body:
        return self._change(idp, group_id, _patching(Group, body), DirectoryChange.PATCHED)

    def delete(self, idp: str, group_id: str) -> None:
        with self._store.write() as uow:
            row = _row_of(uow.session, DirectoryGroupRow, idp, group_id, lock=True)
            group = scim.stored(Group, row.resource)
            uow.session.delete(row)
            stored_directory.changed(uow.session)
            name = group.display_name or ""
            change = DirectoryChange.DELETED
            uow.record(DirectoryGroupChanged(self._clock.now(), idp, group_id, name, change, 0))

    def _change(
        self, idp: str, group_id: str, change: Callable[[Group], Group], kind: DirectoryChange
    ) -> Body:
        with self._store.write() as uow:
            row = _row_of(uow.session, DirectoryGroupRow, idp, group_id, lock=True)
            group = change(scim.stored(Group, row.resource))
            self._store_group(uow, row, group, kind, self._clock.now())
        return self.get(idp, group_id, context=Context.RESOURCE_REPLACEMENT_RESPONSE)

    def _store_group(
        self,
        uow: UnitOfWork,
        row: DirectoryGroupRow,
        group: Group,
        kind: DirectoryChange,
        now: datetime,
    ) -> None:
        s = uow.session
        _check_lengths(displayName=group.display_name, externalId=group.external_id)
        key = (group.display_name or "").casefold()
        taken = s.scalar(
            select(DirectoryGroupRow.id).where(
                DirectoryGroupRow.idp == row.idp,
                DirectoryGroupRow.name_key == key,
                DirectoryGroupRow.id != row.id,
            )
        )
        if taken is not None:
            raise UniquenessException(detail=f"a group named {group.display_name!r} exists")
        members = [m.value for m in group.members or [] if m.value]
        _check_members(s, row.idp, members)
        row.name_key, row.external_id = key, group.external_id
        row.resource = scim.storable(group)
        row.updated_at, row.version = now, row.version + 1
        s.add(row)  # a new group joins the session only once it passed every check
        s.flush()
        stored_directory.changed(s)
        name = group.display_name or ""
        uow.record(DirectoryGroupChanged(now, row.idp, row.id, name, kind, len(members)))

    def _shown(
        self, group: Group, row: DirectoryGroupRow, context: Context, params: scim.Chosen = None
    ) -> Body:
        stamp = _stamp(row, "Group", f"{self._base}/Groups/{row.id}")
        return scim.shown(group, stamp, context, params)


# -- shared by users and groups ----------------------------------------------------------------

DirectoryRow = DirectoryUserRow | DirectoryGroupRow
RowT = TypeVar("RowT", DirectoryUserRow, DirectoryGroupRow)
ResT = TypeVar("ResT", "User[Any]", Group)
_KIND: dict[type[DirectoryRow], str] = {DirectoryUserRow: "user", DirectoryGroupRow: "group"}


def _row_of(
    s: Session, table: type[RowT], idp: str, resource_id: str, *, lock: bool = False
) -> RowT:
    """This IdP's row by id, else NotFound (another IdP's is not found either); `lock`: for
    a write, so two writes of one resource never interleave."""
    stmt = select(table).where(table.id == resource_id)
    row = s.scalars(stmt.with_for_update() if lock else stmt).one_or_none()
    if row is None or row.idp != idp:
        raise NotFoundException(detail=f"no {_KIND[table]} {resource_id[:64]}")
    return row


def _patching(model: type[ResT], body: object) -> Callable[[ResT], ResT]:
    """The change a PATCH body makes (RFC 7644 §3.5.2), checked before any resource is read."""
    operations = scim.parse_patch(model, body)

    def patched(resource: ResT) -> ResT:
        operations.patch(resource)
        return resource

    return patched


KEY_LENGTH = 256  # userName, displayName and externalId: what the store indexes them by


def _check_lengths(**values: str | None) -> None:
    """The values the store keeps a key of fit in it (invalidValue, nothing changed)."""
    for name, value in values.items():
        if value is not None and len(value) > KEY_LENGTH:
            raise InvalidValueException(detail=f"{name} is longer than {KEY_LENGTH} characters")


def _check_free_user_name(s: Session, idp: str, user: User[Any], own_id: str | None) -> None:
    """A userName is one person's in an IdP's directory (RFC 7643 §4.1.1: uniqueness server,
    compared case-insensitively): a rename onto another's is refused, nothing changed."""
    _check_lengths(userName=user.user_name, externalId=user.external_id)
    key = (user.user_name or "").casefold()
    taken = s.scalar(
        select(DirectoryUserRow.id).where(
            DirectoryUserRow.idp == idp, DirectoryUserRow.user_key == key
        )
    )
    if taken is not None and taken != own_id:
        raise UniquenessException(detail=f"the userName {user.user_name!r} is taken")


def _check_members(s: Session, idp: str, members: list[str]) -> None:
    if not members:
        return
    known = set(
        s.scalars(
            select(DirectoryUserRow.id).where(
                DirectoryUserRow.idp == idp, DirectoryUserRow.id.in_(set(members))
            )
        )
    )
    unknown = [m for m in members if m not in known]
    if unknown:
        raise InvalidValueException(detail=f"no user {unknown[0][:64]} to be a member")


def _stamp(row: DirectoryRow, resource_type: str, location: str) -> scim.Stamp:
    return scim.Stamp(row.id, resource_type, row.created_at, row.updated_at, row.version, location)


def _matching(
    store: Store,
    model: type[ResT],
    key: InstrumentedAttribute[str],
    attribute: str,
    idp: str,
    text: str | None,
    show: Callable[[ResT, Any, Context], Body],
) -> list[Shown]:
    """The resources of `idp` that `text` (a filter) matches, oldest first; `key` is the
    column `attribute eq "..."` is looked up by."""
    found = scim.filter_of(model, text)
    table = key.class_
    stmt = select(table).where(table.idp == idp).order_by(table.created_at, table.id)
    wanted = scim.equality_on(found, attribute)
    if wanted is not None:
        stmt = stmt.where(key == wanted.casefold())
    with store.read() as s:
        rows = list(s.scalars(stmt))
    query = Context.RESOURCE_QUERY_RESPONSE
    pairs = [(scim.stored(model, row.resource), row) for row in rows]
    return [partial(show, r, row, query) for r, row in pairs if found is None or found.match(r)]


def _page(matched: list[Shown], start: int, count: int) -> Page:
    """RFC 7644 §3.4.2.4: startIndex is 1-based (less than 1 means 1); count is at most the
    service's maximum (negative means 0). Only the page's resources are shown."""
    first = max(start, 1)
    size = min(max(count, 0), scim.MAX_RESULTS)
    return Page(len(matched), first, [show() for show in matched[first - 1 : first - 1 + size]])


def search_everything(
    users: ProvisionUsers,
    groups: ProvisionGroups,
    idp: str,
    asked: tuple[str | None, int, int],
    params: scim.Chosen = None,
) -> Page:
    """A search at the service's root (RFC 7644 §3.4.3): users, then groups, one page."""
    text, start, count = asked
    return _page(
        users.matching(idp, text, params) + groups.matching(idp, text, params), start, count
    )
