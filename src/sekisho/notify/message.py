"""A message as the outbox stores it: what to say, channel-neutral; each channel renders it.

Kept as plain JSON in the outbox row, so a message written by one version of sekisho is sent
by the next, and rendering (Slack blocks, HTML) can improve without touching stored rows.
A `Notice` is one occurrence of an event before the outbox fans it out: the channel's message
and each person's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    event: str  # a NotifyEvent value, or "notify.test"
    title: str  # one line: a subject, a header
    summary: str  # a sentence or two: what happened and what, if anything, to do
    link: str  # the request's page (every message has one)
    occurred_at: str  # ISO 8601, UTC
    link_label: str = "Open the request"
    facts: tuple[tuple[str, str], ...] = ()  # label, value: shown as a small table
    lines: tuple[str, ...] = ()  # a report's items
    request_id: int | None = None
    grant_id: int | None = None
    template: str | None = None
    role: str = ""  # on a personal channel, why this person hears of it (approver, holder...)
    # Who the message concerns: (user, role). A channel message lists them; a webhook
    # receiver can route on them.
    recipients: tuple[tuple[str, str], ...] = ()
    data: dict[str, Any] = field(default_factory=dict)  # structured facts for machines

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "title": self.title,
            "summary": self.summary,
            "link": self.link,
            "link_label": self.link_label,
            "occurred_at": self.occurred_at,
            "facts": [list(f) for f in self.facts],
            "lines": list(self.lines),
            "request_id": self.request_id,
            "grant_id": self.grant_id,
            "template": self.template,
            "role": self.role,
            "recipients": [list(r) for r in self.recipients],
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        return cls(
            event=str(data["event"]),
            title=str(data["title"]),
            summary=str(data["summary"]),
            link=str(data["link"]),
            link_label=str(data.get("link_label") or "Open the request"),
            occurred_at=str(data["occurred_at"]),
            facts=tuple((str(a), str(b)) for a, b in data.get("facts") or ()),
            lines=tuple(str(line) for line in data.get("lines") or ()),
            request_id=data.get("request_id"),
            grant_id=data.get("grant_id"),
            template=data.get("template"),
            role=str(data.get("role") or ""),
            recipients=tuple((str(a), str(b)) for a, b in data.get("recipients") or ()),
            data=dict(data.get("data") or {}),
        )


@dataclass
class Notice:
    """One occurrence of an event: the channel's message, and each person's own."""

    event: str
    template: str | None
    request_id: int | None
    grant_id: int | None
    broadcast: Message
    personal: dict[str, Message] = field(default_factory=dict)  # user -> message
