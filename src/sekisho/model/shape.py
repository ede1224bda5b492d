"""Validate parsed data against `schema`, turning Pydantic errors into `ModelProblem`s.

The top level is validated first, then each entry of each section on its own: an entry that
breaks a rule is left out of the result (and reported), the others go on to the
cross-reference checks.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import types
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from sekisho.model.rules import RULES
from sekisho.model.schema import (
    SECTIONS,
    AccountDoc,
    ApprovalDoc,
    ChangeSectionDoc,
    ChannelDoc,
    Doc,
    EligibilityDoc,
    EmergencyDoc,
    ExtendDoc,
    GroupDoc,
    IdentityDoc,
    JiraDoc,
    ModelDoc,
    NotificationsDoc,
    OidcDoc,
    OnCallDoc,
    OnCallSourcesDoc,
    PagerDutyDoc,
    ParameterDoc,
    PermissionsDoc,
    RoleDoc,
    RouteDoc,
    SettingsDoc,
    SharedSignalsDoc,
    SignalReceiverDoc,
    StepUpDoc,
    TargetDoc,
    TemplateDoc,
    TicketsDoc,
    UserDoc,
)
from sekisho.model.source import Parsed, Path

D = TypeVar("D", bound=Doc)

_NOUNS: dict[type[BaseModel], str] = {
    ModelDoc: "the top level",
    SettingsDoc: "settings",
    AccountDoc: "an account",
    RoleDoc: "a role",
    TargetDoc: "a target",
    UserDoc: "a user",
    GroupDoc: "a group",
    PermissionsDoc: "permissions",
    TemplateDoc: "a template",
    EligibilityDoc: "an eligibility rule",
    ApprovalDoc: "an approval level",
    ChangeSectionDoc: "a change_info section",
    ParameterDoc: "a parameter",
    TicketsDoc: "tickets",
    OnCallDoc: "an approval level's auto_approve",
    OnCallSourcesDoc: "on_call",
    PagerDutyDoc: "on_call.pagerduty",
    JiraDoc: "tickets.jira",
    StepUpDoc: "a step_up",
    EmergencyDoc: "an emergency section",
    ExtendDoc: "an extend",
    NotificationsDoc: "notifications",
    ChannelDoc: "a channel",
    RouteDoc: "a route",
    SharedSignalsDoc: "shared_signals",
    SignalReceiverDoc: "shared_signals.receive",
    IdentityDoc: "identity",
    OidcDoc: "identity.oidc",
}

_EXPECTED: dict[str, str] = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "dict_type": "a mapping (key: value lines)",
}


@dataclass(frozen=True)
class Entry(Generic[D]):
    """One entry of a section, with where it sits in the file.

    `whole` is False for an entry that broke a shape rule and was salvaged by leaving out the
    broken fields: its references are still checked, but rules about what is *missing* (no
    approvers, too few members) are not judged on it.
    """

    path: Path
    doc: D
    whole: bool = True


@dataclass
class Shaped:
    """What survived shape validation."""

    top: ModelDoc | None = None
    accounts: list[Entry[AccountDoc]] = field(default_factory=list)
    targets: list[Entry[TargetDoc]] = field(default_factory=list)
    users: list[Entry[UserDoc]] = field(default_factory=list)
    groups: list[Entry[GroupDoc]] = field(default_factory=list)
    templates: list[Entry[TemplateDoc]] = field(default_factory=list)
    channels: list[Entry[ChannelDoc]] = field(default_factory=list)  # notifications.channels
    routes: list[Entry[RouteDoc]] = field(default_factory=list)  # notifications.routes
    complete: bool = True  # False when any entry was left out


def validate(parsed: Parsed) -> Shaped:
    shaped = Shaped()
    data = parsed.data
    if not isinstance(data, dict):
        if data is None and not parsed.problems:
            parsed.add((), "required", "the file is empty: an access model starts with version: 1")
        elif data is not None:
            parsed.add(
                (),
                "wrong_type",
                "the top level must be a mapping with version, settings, accounts, targets, "
                "users, groups and templates",
            )
        shaped.complete = False
        return shaped
    try:
        shaped.top = ModelDoc.model_validate(data)
    except ValidationError as exc:
        _report(parsed, exc, ModelDoc, ())
        shaped.complete = False
    if shaped.top is None:
        # Still look at the sections that are lists, so one bad top-level value (a wrong
        # version) does not hide every other problem.
        sections = {k: v for k, v in data.items() if k in SECTIONS and isinstance(v, list)}
    else:
        sections = {name: getattr(shaped.top, name) for name in SECTIONS}
    shaped.accounts = _entries(parsed, shaped, sections, "accounts", AccountDoc)
    shaped.targets = _entries(parsed, shaped, sections, "targets", TargetDoc)
    shaped.users = _entries(parsed, shaped, sections, "users", UserDoc)
    shaped.groups = _entries(parsed, shaped, sections, "groups", GroupDoc)
    shaped.templates = _entries(parsed, shaped, sections, "templates", TemplateDoc)
    notifications = _notification_lists(shaped.top, data)
    base: Path = ("notifications",)
    shaped.channels = _entries(parsed, shaped, notifications, "channels", ChannelDoc, base)
    shaped.routes = _entries(parsed, shaped, notifications, "routes", RouteDoc, base)
    return shaped


def _notification_lists(top: ModelDoc | None, data: dict[str, Any]) -> dict[str, Any]:
    """notifications.channels and .routes, to validate entry by entry like the sections."""
    if top is not None:
        return {"channels": top.notifications.channels, "routes": top.notifications.routes}
    raw = data.get("notifications")
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if k in ("channels", "routes") and isinstance(v, list)}


def _entries(
    parsed: Parsed,
    shaped: Shaped,
    sections: dict[str, Any],
    name: str,
    model: type[D],
    base: Path = (),
) -> list[Entry[D]]:
    out: list[Entry[D]] = []
    for index, raw in enumerate(sections.get(name) or []):
        path: Path = (*base, name, index)
        try:
            out.append(Entry(path, model.model_validate(raw)))
        except ValidationError as exc:
            _report(parsed, exc, model, path)
            shaped.complete = False
            salvaged = _salvage(model, raw, exc)
            if salvaged is not None:
                out.append(Entry(path, salvaged, whole=False))
    return out


def _salvage(model: type[D], raw: Any, exc: ValidationError) -> D | None:
    """The entry without its broken fields, if what is left is valid (never reported)."""
    data = copy.deepcopy(raw)
    errors = exc.errors()
    for _ in range(4):
        for error in errors:
            if not _drop(data, tuple(error["loc"]), missing=error["type"] == "missing"):
                return None
        try:
            return model.model_validate(data)
        except ValidationError as again:
            errors = again.errors()
    return None


def _drop(data: Any, loc: Path, *, missing: bool) -> bool:
    """Remove the innermost named field holding the error at `loc`.

    A whole field goes, never a list item, so the positions (and lines) of the remaining
    items do not shift. False when the entry itself is unusable (its name is broken or
    missing, or it is not a mapping).
    """
    search = loc[:-1] if missing else loc
    keys = [i for i, part in enumerate(search) if isinstance(part, str)]
    if not keys:
        return False
    cut = keys[-1]
    if cut == 0 and loc[0] == "name":
        return False
    container = data
    for part in loc[:cut]:
        try:
            container = container[part]
        except (KeyError, IndexError, TypeError):
            return True  # an enclosing field is already gone
    if isinstance(container, dict):
        container.pop(loc[cut], None)
    return True


def _report(parsed: Parsed, exc: ValidationError, model: type[BaseModel], base: Path) -> None:
    for error in exc.errors():
        loc: Path = tuple(error["loc"])
        path = (*base, *loc)
        rule, message = _translate(parsed, error, model, loc, path)
        parsed.add(path, rule, message)


def _translate(
    parsed: Parsed, error: ErrorDetails, model: type[BaseModel], loc: Path, path: Path
) -> tuple[str, str]:
    kind = error["type"]
    what = _field_words(path)
    if kind == "extra_forbidden":
        return "unknown_field", _unknown_field(model, loc)
    if kind == "missing":
        owner = _model_at(model, loc[:-1])
        where = f" in {_NOUNS.get(owner, 'this entry')}" if owner is not None else ""
        if parsed.has(path):
            return "required", f"{what} is empty; give it a value"
        return "required", f"{what} is required{where}"
    if kind in _EXPECTED:
        return "wrong_type", _wrong_type(parsed, path, what, _EXPECTED[kind], error["input"])
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "one of the listed values")
        return "invalid_choice", f"{what} must be {expected}, not {_describe(error['input'])}"
    if kind in RULES:
        return kind, f"{what}: {error['msg']}"
    return "invalid_value", f"{what}: {error['msg']}"


def _field_words(path: Path) -> str:
    """`('roles', 2, 'name')` -> "name"; `('users', 0)` -> "users[0]"."""
    if not path:
        return "the top level"
    if isinstance(path[-1], int):
        named = [p for p in path if isinstance(p, str)]
        return f"{named[-1] if named else 'item'}[{path[-1]}]"
    return str(path[-1])


def _unknown_field(model: type[BaseModel], loc: Path) -> str:
    key = str(loc[-1])
    owner = _model_at(model, loc[:-1])
    if owner is None:
        return f"unknown field {key!r}"
    known = list(owner.model_fields)
    message = f"{_NOUNS.get(owner, 'this entry')} has no field {key!r}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return message + f" (fields: {', '.join(known)})"


def _wrong_type(parsed: Parsed, path: Path, what: str, expected: str, value: object) -> str:
    message = f"{what} must be {expected}, not {_describe(value)}"
    source = parsed.scalar_text.get(path)
    if expected == "text" and source is not None:
        message += f'; put it in quotes: {what}: "{source}"'
    return message


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value[:60]!r}"
    if isinstance(value, dt.date | dt.datetime):
        return f"the date {value.isoformat()}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _model_at(model: type[BaseModel], loc: Path) -> type[BaseModel] | None:
    """The Pydantic model that validates the value at `loc` inside `model`, if any."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            if get_origin(current) is not list:
                return None
            current = get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            if info is None:
                return None
            current = info.annotation
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None
