"""The directory an identity provider provisions over SCIM 2.0 (RFC 7643/7644).

An IdP pushes people and groups; sekisho keeps them as they were sent, per IdP. The model
still decides who someone is here: a directory user *names* a model user by `userName` (or
by a unique e-mail), as an ID token does (`domain.sso.model_user_named`). What the directory
changes for sekisho is the leaver: a directory user that is deactivated or deleted places a
user lock on the person it names, which ends everything they hold; reactivating them lifts
that lock (access itself comes back only through new requests).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import replace
from enum import StrEnum

from sekisho.domain.access import AccessModel, User
from sekisho.domain.actor import Actor
from sekisho.domain.errors import InvalidInput

SCIM_TOKEN_PREFIX = "sks_scim_"
_IDP_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class DirectoryChange(StrEnum):
    CREATED = "created"
    REPLACED = "replaced"
    PATCHED = "patched"
    DEACTIVATED = "deactivated"  # active turned false (a replace or a patch said so)
    REACTIVATED = "reactivated"
    DELETED = "deleted"


def check_idp_name(name: str) -> str:
    """An IdP's name as sekisho knows it (tokens, audit, locks): a short lowercase label."""
    if not _IDP_NAME.fullmatch(name or ""):
        raise InvalidInput.one(
            "idp",
            "invalid_name",
            "name the identity provider with lowercase letters, digits and dashes (okta, entra)",
        )
    return name


def provisioner(idp: str) -> Actor:
    """Who a directory change is by: the IdP itself, through its SCIM token."""
    return Actor.system(f"scim:{idp}")


def new_scim_token() -> str:
    return SCIM_TOKEN_PREFIX + secrets.token_urlsafe(32)


def change_of_activity(before: bool | None, after: bool) -> DirectoryChange | None:
    """DEACTIVATED or REACTIVATED when a write turns `active` (None: the user is new)."""
    if before is None or before == after:
        return None
    return DirectoryChange.REACTIVATED if after else DirectoryChange.DEACTIVATED


def lock_reason(idp: str, change: DirectoryChange) -> str:
    return f"{change.value} in the identity provider ({idp}, SCIM)"


def with_idp_members(model: AccessModel, found: Mapping[str, set[str]]) -> AccessModel:
    """`model` with each standing group's members taken from the IdP groups it names added to
    the ones it lists (never a work group's: the model's checks refuse the mapping there)."""
    changed = []
    for group in model.groups:
        extra = {user for name in group.idp_groups for user in found.get(name, ())}
        if group.is_work or extra <= group.members:
            changed.append(group)
            continue
        changed.append(replace(group, members=group.members | frozenset(extra)))
    if all(a is b for a, b in zip(changed, model.groups, strict=True)):
        return model
    return replace(model, groups=tuple(changed))


def with_admitted(model: AccessModel, names: Iterable[str]) -> AccessModel:
    """`model` with the people the IdPs admit as users too, by the names the IdP gives them
    (those it lists already stay as it lists them)."""
    known = {user.name for user in model.users}
    added = tuple(User(name, name) for name in dict.fromkeys(names) if name not in known)
    return replace(model, users=model.users + added) if added else model
