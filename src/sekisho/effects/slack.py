"""What Slack's requests leave behind when they change nothing: a denied audit entry."""

from __future__ import annotations

from sekisho.domain.events import SlackRequestRefused
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event


def refused(fx: EffectContext, e: SlackRequestRefused) -> list[Event]:
    source = f"slack:{e.slack_user}" if e.slack_user else "slack"
    entry = AuditEvent(
        "slack.refused",
        e.user or "unknown",
        source[:256],
        outcome="denied",
        subject=e.user,
        detail={"verb": e.what[:100], "reason": e.reason[:300]},
    )
    fx.audit(e.at, entry)
    return []


HANDLERS: dict[type, Handler] = {SlackRequestRefused: refused}
