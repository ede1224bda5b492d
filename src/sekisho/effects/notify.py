"""What the notification jobs' events leave behind: messages in the outbox, a wake-up.

The sweep's reminders and the gathered reports are written here, in the transaction that
took them; the dispatcher hears `notify.queued` after the commit and delivers at once.
"""

from __future__ import annotations

from sekisho.domain.events import GrantsEndingSoon, ReportComposed
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.events import Event
from sekisho.store.tables import GrantRow, RequestRow

QUEUED = "notify.queued"


def ending_soon(fx: EffectContext, e: GrantsEndingSoon) -> list[Event]:
    model = fx.model
    for grant_id in e.grant_ids:
        grant = fx.session.get_one(GrantRow, grant_id)
        row = fx.session.get_one(RequestRow, grant.request_id)
        fx.outbox.grant_ending_soon(fx.session, model, row, grant, e.at)
    return [Event(QUEUED, e.at)]


def report_composed(fx: EffectContext, e: ReportComposed) -> list[Event]:
    fx.outbox.report_composed(fx.session, fx.model, e.source, e.report_key, e.at)
    return [Event(QUEUED, e.at)]


HANDLERS: dict[type, Handler] = {
    GrantsEndingSoon: ending_soon,
    ReportComposed: report_composed,
}
