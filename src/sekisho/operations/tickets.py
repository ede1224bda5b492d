"""The tickets a request names, checked in Jira before it is filed (never inside a
transaction: the ticket system is another service). A ticket that does not exist or is done
refuses the filing (422, naming the parameter); Jira unable to say refuses it too (503):
nothing is filed on a ticket nobody could check."""

from __future__ import annotations

from sekisho.domain.access import AccessModel
from sekisho.domain.drafts import RequestDraft
from sekisho.domain.errors import InvalidInput, Unavailable
from sekisho.domain.tickets import ISSUE_KEY, TicketsUnavailable, ticket_problem
from sekisho.ports import Tickets


def check_tickets(tickets: Tickets, model: AccessModel, draft: RequestDraft) -> None:
    template = model.template(draft.template)
    if template is None or model.jira is None:
        return  # an unknown template is the draft's own error, in its transaction
    problems = []
    for param in template.parameters:
        key = (draft.params.get(param.name) or "").strip()
        if not param.jira or not key:
            continue  # a missing required one is the draft's own error too
        try:
            state = tickets.state(model.jira, key) if ISSUE_KEY.fullmatch(key) else None
        except TicketsUnavailable as exc:
            raise Unavailable(f"{key} cannot be checked now: {exc}; try again") from None
        problem = ticket_problem(f"param.{param.name}", key, state)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise InvalidInput(problems)
