"""A request as a person typed it, read into what it asks for. Pure: no store, no clock.

Every interface hands the server a `RequestDraft` of text; `read_draft` checks it against the
access model and returns a `ReadDraft` (template, group, subject, window, sections, params)
or raises `InvalidInput` naming each field and rule. Whether an equal request is already open
is the store's question, asked by the operation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sekisho.domain import timespec
from sekisho.domain.access import AccessModel, Emergency, Group, Template, TemplateAction
from sekisho.domain.errors import FieldProblem, Forbidden, InvalidInput, NotEligible
from sekisho.domain.text import LONG_TEXT, SHORT_TEXT, check_text

# A start a little in the past (clock skew, a slow form) means "now".
START_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class RequestDraft:
    """A request as a person typed it. Times are text; the server reads them in its zone."""

    template: str
    group: str
    reason: str
    user: str | None = None
    until: str | None = None
    duration: str | None = None
    start: str | None = None
    info: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    emergency: bool = False  # break-glass: granted at once, reviewed after (template.emergency)


@dataclass(frozen=True)
class Window:
    """When access would hold. Without a start, a duration counts from the activation."""

    start_at: datetime | None
    end_at: datetime | None
    duration: timedelta | None = None

    def describe(self) -> str:
        if self.end_at:
            return f" until {timespec.iso(self.end_at)}"
        if self.duration:
            return f" for {timespec.format_duration(self.duration)} after approval"
        return ""


@dataclass(frozen=True)
class ReadDraft:
    template: Template
    group: Group
    subject: str
    window: Window
    reason: str
    info: dict[str, str]
    params: dict[str, str]
    emergency: Emergency | None = None  # the template's rule, when filed as an emergency

    @property
    def summary(self) -> str:
        return f"{self.subject} in {self.group.name}{self.window.describe()}"


def read_draft(
    model: AccessModel, filer: str, draft: RequestDraft, now: datetime, *, for_others: bool
) -> ReadDraft:
    """Check `draft` as filed by `filer` (who may file for others when `for_others`)."""
    template, group, subject = _resolve(model, filer, draft, for_others)
    emergency = _emergency(template, draft, filer, subject) if draft.emergency else None
    window = _window(model, template, draft, now, emergency)
    info = _change_info(template, draft.info)
    params = _params(template, draft.params)
    if emergency is not None and not params.get(emergency.ticket):
        raise InvalidInput.one(
            f"param.{emergency.ticket}",
            "required",
            f"an emergency needs its incident ticket in {emergency.ticket}",
        )
    reason = check_text("reason", draft.reason, max_length=LONG_TEXT, multiline=True)
    if not reason:
        raise InvalidInput.one("reason", "required", "say why you need this access")
    check_eligible(model, template, group, subject)
    return ReadDraft(template, group, subject, window, reason, info, params, emergency)


def _emergency(template: Template, draft: RequestDraft, filer: str, subject: str) -> Emergency:
    """The template's break-glass rule, if this draft may use it: for oneself, starting now."""
    if template.emergency is None:
        raise InvalidInput.one(
            "emergency",
            "no_emergency",
            f"{template.name} has no emergency section; file an ordinary request",
        )
    if subject != filer:
        raise Forbidden("an emergency grants access to the one who files it, nobody else")
    if draft.start:
        raise InvalidInput.one("start", "not_applicable", "an emergency starts now; give no start")
    return template.emergency


def decide_by(model: AccessModel, window: Window, now: datetime) -> datetime:
    """Until when approvers may decide: the approval timeout, or the start (or end) if sooner."""
    limit = now + model.settings.approval_timeout
    deadline = window.start_at or window.end_at
    return min(limit, deadline) if deadline else limit


def check_eligible(model: AccessModel, template: Template, group: Group, user: str) -> None:
    mine = {g.name for g in model.standing_groups_of(user)}
    allowed = template.requestable_groups(mine)
    if group.name not in allowed:
        options = ", ".join(sorted(allowed)) or "none"
        raise NotEligible(
            f"{user} may not request {group.name} with {template.name} "
            f"(groups {user} may request: {options})"
        )


def requestable(
    model: AccessModel, user_groups: frozenset[str]
) -> list[tuple[Template, list[str]]]:
    """The templates a person in `user_groups` may file, each with the work groups they may
    ask for: `check_eligible`'s rule, asked ahead (a form offers nothing it would refuse)."""
    found = []
    for template in model.templates:
        groups = sorted(template.requestable_groups(user_groups))
        if groups:
            found.append((template, groups))
    return found


def _resolve(
    model: AccessModel, filer: str, draft: RequestDraft, for_others: bool
) -> tuple[Template, Group, str]:
    problems: list[FieldProblem] = []
    template = model.template(draft.template)
    if template is None:
        problems.append(
            FieldProblem("template", "unknown_template", f"no template {draft.template!r}")
        )
    group = model.group(draft.group)
    if group is None:
        problems.append(FieldProblem("group", "unknown_group", f"no group {draft.group!r}"))
    elif not group.is_work:
        problems.append(
            FieldProblem(
                "group",
                "work_group_only",
                f"{group.name} is a standing group; requests fill only work groups",
            )
        )
    subject = draft.user or filer
    if model.user(subject) is None:
        problems.append(FieldProblem("user", "unknown_user", f"no user {subject!r}"))
    if problems:
        raise InvalidInput(problems)
    assert template is not None
    assert group is not None
    if subject != filer and not for_others:
        raise Forbidden("you may file requests only for yourself (admins may file for others)")
    return template, group, subject


def _window(
    model: AccessModel,
    template: Template,
    draft: RequestDraft,
    now: datetime,
    emergency: Emergency | None,
) -> Window:
    if template.action is TemplateAction.REMOVE:
        return _removal_window(draft)
    tz = timespec.zone(model.settings.timezone)
    if bool(draft.until) == bool(draft.duration):
        raise InvalidInput.one(
            "until", "one_of_until_or_for", "give exactly one of --until TIME or --for DURATION"
        )
    start = now
    if draft.start:
        start = timespec.parse_instant(draft.start, "start", tz)
        if start < now - START_SKEW:
            raise InvalidInput.one("start", "in_future", "the start is in the past")
        start = max(start, now)
    duration = None
    if draft.until:
        end = timespec.parse_instant(draft.until, "until", tz)
        field_name = "until"
    else:
        duration = timespec.parse_duration(draft.duration or "", "for")
        end = start + duration
        field_name = "for"
    if emergency is not None:  # break-glass is bounded more tightly than the template
        _check_bounds(
            f"an emergency with {template.name}",
            emergency.max_duration,
            start,
            end,
            now,
            field_name,
        )
    else:
        _check_bounds(template.name, template.max_duration, start, end, now, field_name)
    # A start that is already here means "now", exactly as if none was given: a start
    # decides when the request stops waiting for approval, so keeping it would make the
    # request expire undecided the moment it was filed.
    if start <= now and duration is not None:
        # "--for 2h" asks for two hours of access: they count from the activation, not
        # from the filing, so time spent waiting for an approver is not lost.
        return Window(None, None, duration)
    return Window(start if start > now else None, end)


def _removal_window(draft: RequestDraft) -> Window:
    for name, value in (("until", draft.until), ("for", draft.duration)):
        if value:
            raise InvalidInput.one(
                name, "not_applicable", "a remove request ends access now; give no end"
            )
    if draft.start:
        raise InvalidInput.one("start", "not_applicable", "a remove request has no start")
    return Window(None, None)


def _check_bounds(
    what: str,  # "AddUserToGroup", "an emergency with AddUserToGroup": what grants at most
    max_duration: timedelta,
    start: datetime,
    end: datetime,
    now: datetime,
    field_name: str,
) -> None:
    if end <= now:
        raise InvalidInput.one(
            field_name, "in_future", f"the end {timespec.iso(end)} is not in the future"
        )
    if end <= start:
        raise InvalidInput.one("start", "start_before_end", "the start must be before the end")
    if end - start > max_duration:
        limit = timespec.format_duration(max_duration)
        raise InvalidInput.one(
            field_name,
            "max_duration",
            f"{what} grants at most {limit}; asked for {timespec.format_duration(end - start)}",
        )


def _change_info(template: Template, given: Mapping[str, str]) -> dict[str, str]:
    sections = {c.name: c for c in template.change_info}
    problems: list[FieldProblem] = []
    info: dict[str, str] = {}
    for key, value in given.items():
        if key not in sections:
            known = ", ".join(sections) or "none"
            problems.append(
                FieldProblem(
                    f"info.{key[:40]}",
                    "unknown_section",
                    f"{template.name} has no section {key[:40]!r} (sections: {known})",
                )
            )
            continue
        info[key] = check_text(f"info.{key}", value, max_length=LONG_TEXT, multiline=True)
    for section in template.change_info:
        if section.required and not info.get(section.name):
            problems.append(
                FieldProblem(f"info.{section.name}", "required", f"{section.title} is required")
            )
    if problems:
        raise InvalidInput(problems)
    return info


def _params(template: Template, given: Mapping[str, str]) -> dict[str, str]:
    declared = {p.name: p for p in template.parameters}
    problems: list[FieldProblem] = []
    params: dict[str, str] = {}
    for key, value in given.items():
        spec = declared.get(key)
        if spec is None:
            problems.append(
                FieldProblem(
                    f"param.{key[:40]}", "unknown_parameter", f"{template.name} has no {key!r}"
                )
            )
            continue
        text = check_text(f"param.{key}", value, max_length=SHORT_TEXT)
        if spec.pattern and not re.fullmatch(spec.pattern, text):
            problems.append(FieldProblem(f"param.{key}", "pattern", f"must match {spec.pattern}"))
        params[key] = text
    for spec in template.parameters:
        if spec.required and not params.get(spec.name):
            problems.append(
                FieldProblem(f"param.{spec.name}", "required", f"{spec.name} is required")
            )
    if problems:
        raise InvalidInput(problems)
    return params
