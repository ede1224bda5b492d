"""How notifications say things: people by name, times in the model's zone, links to pages.

One `Wording` is made for one notice: the model in force, the server's public URL (every
message links to a page) and the moment the message is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sekisho.domain.access import AccessModel, TemplateAction
from sekisho.domain.timespec import format_duration, iso, zone
from sekisho.notify.message import Message
from sekisho.store.tables import ReportLineRow, RequestRow

CLIP = 500  # characters of free text (reasons, comments, errors) a message quotes


class Wording:
    """How messages say things: people by name, times in the model's zone, links."""

    def __init__(self, model: AccessModel, public_url: str, at: datetime) -> None:
        self.model = model
        self.at = at  # when the message is written: its `occurred_at`
        self._zone = zone(model.settings.timezone)
        self._base = public_url.rstrip("/")

    def home(self) -> str:
        return f"{self._base}/"

    def audit_link(self) -> str:
        return f"{self._base}/audit"

    def locks_link(self) -> str:
        return f"{self._base}/locks"

    def request_link(self, request_id: int) -> str:
        return f"{self._base}/requests/{request_id}"

    def who(self, name: str) -> str:
        user = self.model.user(name)
        return f"{user.display_name} ({name})" if user and user.display_name else name

    def when(self, at: datetime) -> str:
        local = at.astimezone(self._zone)
        if local.utcoffset() == timedelta(0):
            return f"{at:%Y-%m-%d %H:%M} UTC"
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({at:%H:%M} UTC)"

    def window(self, row: RequestRow) -> str:
        if row.end_at is not None:
            text = f"until {self.when(row.end_at)}"
        elif row.duration_s:
            text = f"for {format_duration(timedelta(seconds=row.duration_s))} from the approval"
        else:
            text = "now"
        if row.start_at is not None:
            text = f"from {self.when(row.start_at)}, {text}"
        return text

    def short(self, row: RequestRow) -> str:
        if row.action == TemplateAction.REMOVE.value:
            return f"remove {row.subject} from {row.group_name}"
        return f"{row.subject} in {row.group_name}"

    def about(self, row: RequestRow) -> str:
        """What the request is for, after "the request": "for X to join G for 2h"."""
        if row.action == TemplateAction.REMOVE.value:
            return f"to remove {self.who(row.subject)} from {row.group_name}"
        if row.extends_grant_id is not None:
            return (
                f"to extend grant #{row.extends_grant_id} of {self.who(row.subject)} in "
                f"{row.group_name} {self.window(row)}"
            )
        return f"for {self.who(row.subject)} to join {row.group_name} {self.window(row)}"

    def asks(self, row: RequestRow) -> str:
        """What the requester asks, after their name: "asks to join G for 2h"."""
        if row.requester != row.subject:
            return f"asks {self.about(row)}"
        if row.action == TemplateAction.REMOVE.value:
            return f"asks to leave {row.group_name}"
        if row.extends_grant_id is not None:
            return f"asks for more time on grant #{row.extends_grant_id} in {row.group_name} " + (
                self.window(row)
            )
        return f"asks to join {row.group_name} {self.window(row)}"

    def gives(self, group_name: str) -> list[tuple[str, str]]:
        group = self.model.group(group_name)
        if group is None:
            return []
        found = []
        if group.permissions.assume:
            found.append(("May assume", ", ".join(sorted(group.permissions.assume))))
        if group.permissions.connect:
            found.append(("May connect to", ", ".join(sorted(group.permissions.connect))))
        return found

    def facts(self, row: RequestRow) -> list[tuple[str, str]]:
        facts = [
            ("Request", f"#{row.id} ({row.template})"),
            ("User", self.who(row.subject)),
            ("Group", row.group_name),
        ]
        if row.action == TemplateAction.GRANT.value:
            facts.append(("Access", self.window(row)))
        if row.requester != row.subject:
            facts.append(("Requested by", self.who(row.requester)))
        facts.append(("Reason", clip(row.reason)))
        template = self.model.template(row.template)
        for section in template.change_info if template else ():
            if row.change_info.get(section.name):
                facts.append((section.title, clip(row.change_info[section.name])))
        facts += [(key, value) for key, value in sorted(row.params.items())]
        return facts

    def message(
        self,
        row: RequestRow,
        title: str,
        summary: str,
        role: str,
        *,
        link_label: str | None = None,
        facts: Iterable[tuple[str, str]] | None = None,
        grant_id: int | None = None,
        recipients: tuple[tuple[str, str], ...] = (),
    ) -> Message:
        return Message(
            event="",  # set from the notice's event when the outbox stores it
            title=title,
            summary=summary,
            link=self.request_link(row.id),
            link_label=link_label or f"Open request #{row.id}",
            occurred_at=iso(self.at),
            facts=tuple(facts if facts is not None else self.facts(row)),
            request_id=row.id,
            grant_id=grant_id,
            template=row.template,
            role=role,
            recipients=recipients,
            data={
                "status": row.status,
                "user": row.subject,
                "group": row.group_name,
                "requester": row.requester,
                "action": row.action,
            },
        )

    def line(self, line: ReportLineRow) -> str:
        where = f"grant #{line.grant_id}" if line.grant_id else "no grant"
        if line.request_id:
            where += f", request #{line.request_id} {self.request_link(line.request_id)}"
        label = line.outcome.upper() if line.outcome == "failed" else line.outcome
        return f"{label}: {line.user} in {line.group_name} ({where}): {clip(line.detail, 300)}"


def clip(text: str, limit: int = CLIP) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
