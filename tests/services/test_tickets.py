"""A template's ticket checked in Jira before the request is filed (a contract test against
tests/jira_standin.py): an open issue files; a done, missing or malformed one is refused
naming the parameter; Jira unable to say refuses the filing (503); nothing is stored either
way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flows import file, invalid, load_model, refused

from jira_standin import JiraStandIn, basic, running_jira
from sekisho.bootstrap import Core
from sekisho.domain.errors import InvalidModel, Unavailable
from sekisho.domain.requests import RequestStatus
from support import EXAMPLE_TEXT

TICKET = """      - name: ticket
        description: Change ticket, e.g. CHG-1234
        required: false
        pattern: "[A-Z]+-[0-9]+"
"""
USER, TOKEN = "sekisho-bot@example.com", "jira-api-token-not-for-production"


def with_jira(url: str) -> str:
    assert TICKET in EXAMPLE_TEXT
    checked = TICKET.replace("        pattern:", "        jira: true\n        pattern:")
    tickets = (
        f"\ntickets:\n  jira: {{url: {url}, user_env: SEKISHO_JIRA_USER, "
        "token_env: SEKISHO_JIRA_TOKEN}\n"
    )
    return EXAMPLE_TEXT.replace(TICKET, checked) + tickets


@pytest.fixture
def jira(core: Core, monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraStandIn]:
    monkeypatch.setenv("SEKISHO_JIRA_USER", USER)
    monkeypatch.setenv("SEKISHO_JIRA_TOKEN", TOKEN)
    issues = {"CHG-1": "In Progress", "CHG-2": "Done", "CHG-3": "To Do"}
    with running_jira(basic(USER, TOKEN), issues) as standin:
        load_model(core, with_jira(standin.url))
        yield standin


def test_an_open_ticket_files_the_request(core: Core, jira: JiraStandIn) -> None:
    filed = file(core, params={"ticket": "CHG-1"})
    assert filed.status == RequestStatus.PENDING_APPROVAL
    assert filed.params == {"ticket": "CHG-1"}
    assert jira.asked == ["CHG-1"]


@pytest.mark.parametrize(
    ("ticket", "rule"),
    [("CHG-2", "ticket_closed"), ("CHG-404", "ticket_not_found"), ("CHG-1/../x", "ticket_format")],
)
def test_a_done_missing_or_malformed_ticket_is_refused_naming_the_parameter(
    core: Core, jira: JiraStandIn, ticket: str, rule: str
) -> None:
    with invalid(core, "param.ticket", rule):
        file(core, params={"ticket": ticket})
    assert "CHG-1/../x" not in jira.asked  # a malformed key never reaches Jira


def test_jira_unable_to_say_refuses_the_filing(
    core: Core, jira: JiraStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEKISHO_JIRA_TOKEN", "a-revoked-token")
    with refused(core, Unavailable, match="Jira refused sekisho's credentials"):
        file(core, params={"ticket": "CHG-1"})
    load_model(core, with_jira("http://127.0.0.1:9"))  # nothing listens there
    with refused(core, Unavailable, match="CHG-1 cannot be checked now: Jira cannot be reached"):
        file(core, params={"ticket": "CHG-1"})


def test_no_ticket_where_none_is_required_asks_jira_nothing(core: Core, jira: JiraStandIn) -> None:
    file(core)
    assert jira.asked == []


def test_a_parameter_checked_in_jira_needs_jira_in_the_model(core: Core) -> None:
    text = with_jira("https://example.atlassian.net").split("\ntickets:")[0]
    with pytest.raises(InvalidModel) as caught:
        load_model(core, text)
    assert {p.rule for p in caught.value.problems} == {"jira_not_configured"}
    with pytest.raises(InvalidModel) as insecure:
        load_model(core, with_jira("http://jira.example.com"))
    assert {p.rule for p in insecure.value.problems} == {"insecure_transport"}
