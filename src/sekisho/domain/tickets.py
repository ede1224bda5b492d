"""Tickets a request names: what sekisho asks the ticket system, and what it decides. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sekisho.domain.errors import FieldProblem

# Jira's issue keys: a project key (a capital, then capitals, digits, _) and a number.
ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,49}-[1-9][0-9]{0,17}")


class TicketsUnavailable(Exception):
    """The ticket system cannot say now (unreachable, refused sekisho's credentials); the
    message is safe to show and never holds a secret."""


@dataclass(frozen=True)
class IssueState:
    key: str
    status: str  # as the ticket system names it: "In Progress", "Done"
    done: bool  # its status category is done: closed, resolved, cancelled


def ticket_problem(field: str, key: str, state: IssueState | None) -> FieldProblem | None:
    """Why a request may not name `key`, or None when it is an open issue."""
    if not ISSUE_KEY.fullmatch(key):
        return FieldProblem(field, "ticket_format", f"{key[:60]!r} is not a Jira issue key")
    if state is None:
        return FieldProblem(
            field, "ticket_not_found", f"{key} is not an issue in Jira (or sekisho cannot see it)"
        )
    if state.done:
        return FieldProblem(
            field, "ticket_closed", f"{key} is {state.status} in Jira: name an open ticket"
        )
    return None
