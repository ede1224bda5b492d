"""Which user a received SET is about: its `sub_id` (RFC 9493) matched against the model."""

from __future__ import annotations

from typing import Any

from sekisho.domain.access import AccessModel
from sekisho.signals.receiver import SetRejected

MAX_DEPTH = 2  # complex -> user, aliases -> identifiers: no deeper nesting is defined


def subject_user(model: AccessModel, subject: dict[str, Any]) -> str:
    """The user's name; SetRejected (invalid_request) when no user, or more than one, is
    meant: a signal about someone sekisho does not know changes nothing."""
    found = _users(model, subject, 0)
    if len(found) != 1:
        what = "is not a user sekisho knows" if not found else "names more than one user"
        raise SetRejected("invalid_request", f"the SET's subject {what}")
    return found.pop()


def _users(model: AccessModel, subject: object, depth: int) -> set[str]:
    if not isinstance(subject, dict) or depth > MAX_DEPTH:
        return set()
    kind = subject.get("format")
    if kind == "email" and isinstance(subject.get("email"), str):
        wanted = subject["email"].casefold()
        return {u.name for u in model.users if u.email and u.email.casefold() == wanted}
    if kind == "opaque" and isinstance(subject.get("id"), str):
        return {subject["id"]} if model.user(subject["id"]) else set()
    if kind == "complex":  # SSF 1.0 §3.2: the user member says who
        return _users(model, subject.get("user"), depth + 1)
    if kind == "aliases" and isinstance(subject.get("identifiers"), list):
        found: set[str] = set()
        for identifier in subject["identifiers"][:10]:
            found |= _users(model, identifier, depth + 1)
        return found
    return set()  # iss_sub, phone_number, did, ...: nothing in the model says whose they are
