"""Approvals in Slack (contract tests against tests/slack_standin.py, driven by slack-sdk): the
approver's message carries Approve and Reject; a press decides by the API's own rules as the
Slack user's sekisho user; the messages are updated in place and the requester told; every
forged, replayed, unknown or refused press changes nothing, says why in Slack and is audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.access import Verb
from sekisho.domain.requests import RequestStatus
from sekisho.notify.slack_app import APPROVE, REJECT
from sekisho.server import create_app
from sekisho.store.tables import AuditRow, RequestRow
from slack_standin import SlackStandIn, button_press, reject_submission, running_slack, signed
from support import ADMIN, EXAMPLE_TEXT, MEMBER, draft, example_with_step_up

TOKEN, SECRET = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy", "8f742231b10e8888"
CHANNEL = "C0APPROVALS"
PEOPLE = {
    "U0LEADER01": "leader01@example.com",
    "U0MEMBER01": "Member01@Example.com",  # Slack's case; the model's is lower
    "U0STRANGER": "stranger@example.org",
}


def notifications(endpoint: str) -> str:
    return f"""
notifications:
  channels:
    - name: approvals
      type: slack_app
      slack_channel: {CHANNEL}
      bot_token_env: SEKISHO_SLACK_BOT_TOKEN
      signing_secret_env: SEKISHO_SLACK_SIGNING_SECRET
      endpoint_url: {endpoint}
  routes:
    - {{events: [approval.needed], channels: [approvals]}}
"""


@pytest.fixture
def slack(core: Core, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    monkeypatch.setenv("SEKISHO_SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SEKISHO_SLACK_SIGNING_SECRET", SECRET)
    with running_slack(TOKEN, PEOPLE) as standin:
        core.models.load(EXAMPLE_TEXT + notifications(standin.url), "slack.yaml", ADMIN)
        yield standin


@pytest.fixture
def api(core: Core) -> Iterator[TestClient]:
    with TestClient(create_app(core), raise_server_exceptions=False) as client:
        yield client


def post(api: TestClient, clock: ManualClock, path: str, body: str) -> Any:
    headers = signed(SECRET, body, int(clock.now().timestamp()))
    return api.post(path, content=body, headers=headers)


def asked(core: Core, slack: SlackStandIn) -> dict[str, Any]:
    """member01 files; the dispatcher posts the approval request: the posted message."""
    core.new_dispatcher().run_pass()
    [message] = slack.called("chat.postMessage")
    return message


def press(api: TestClient, clock: ManualClock, user: str, action: str, request_id: int) -> Any:
    body = button_press(user, action, str(request_id), CHANNEL, "1700000000.000001")
    return post(api, clock, "/slack/interactions", body)


def status(core: Core, request_id: int) -> str:
    with core.db.read() as s:
        return s.get_one(RequestRow, request_id).status


def refusals(core: Core) -> list[str]:
    with core.db.read() as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.action == "slack.refused"))
        return [str(r.detail["reason"]) for r in rows]


def can_assume(core: Core) -> bool:
    return core.authz.decide("member01", Verb.ASSUME, "prod/Prod_MemberRole").allowed


def buttons(message: dict[str, Any]) -> list[str]:
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    return [e.get("action_id", "link") for e in actions[0]["elements"]]


def test_an_approver_approves_with_the_button_and_every_message_follows(
    core: Core, slack: SlackStandIn, api: TestClient, clock: ManualClock
) -> None:
    request = core.workflow.file(MEMBER, draft())
    message = asked(core, slack)
    assert message["channel"] == CHANNEL
    assert buttons(message) == [APPROVE, REJECT, "link"]

    assert not can_assume(core)  # the seed's flow: no way in before the approval
    answer = press(api, clock, "U0LEADER01", APPROVE, request.id)
    assert answer.status_code == 200
    assert status(core, request.id) == RequestStatus.SUCCEEDED
    assert can_assume(core)  # member01 may switch into production now
    with core.db.read() as s:
        approved = s.scalars(select(AuditRow).where(AuditRow.action == "request.approved")).one()
    assert (approved.actor, approved.source) == ("leader01", "slack:U0LEADER01")

    core.new_dispatcher().run_pass()
    [update] = slack.called("chat.update")
    assert (update["channel"], update["ts"]) == (CHANNEL, "1700000000.000001")
    assert "approved" in json.dumps(update["blocks"])
    assert APPROVE not in json.dumps(update["blocks"])  # the buttons are gone
    told = slack.called("chat.postMessage")[1]
    assert told["channel"] == "U0MEMBER01"  # found by e-mail, whatever its case
    assert slack.called("users.lookupByEmail") == [{"email": "member01@example.com"}]


def test_reject_asks_for_the_reason_in_a_modal(
    core: Core, slack: SlackStandIn, api: TestClient, clock: ManualClock
) -> None:
    request = core.workflow.file(MEMBER, draft())
    asked(core, slack)
    assert press(api, clock, "U0LEADER01", REJECT, request.id).status_code == 200
    [opened] = slack.called("views.open")
    assert opened["view"]["private_metadata"] == str(request.id)
    assert status(core, request.id) == RequestStatus.PENDING_APPROVAL  # nothing yet

    empty = post(
        api, clock, "/slack/interactions", reject_submission("U0LEADER01", str(request.id), "")
    )
    assert empty.json()["response_action"] == "errors"
    assert "say why you reject" in empty.json()["errors"]["reason"]
    done = post(
        api,
        clock,
        "/slack/interactions",
        reject_submission("U0LEADER01", str(request.id), "not today"),
    )
    assert done.json() == {"response_action": "clear"}
    assert status(core, request.id) == RequestStatus.REJECTED


def test_presses_the_rules_refuse_say_why_in_slack_and_change_nothing(
    core: Core, slack: SlackStandIn, api: TestClient, clock: ManualClock
) -> None:
    request = core.workflow.file(MEMBER, draft())
    asked(core, slack)
    press(api, clock, "U0MEMBER01", APPROVE, request.id)  # their own request
    press(api, clock, "U0STRANGER", APPROVE, request.id)  # not in the model
    press(api, clock, "U0NOBODY01", APPROVE, request.id)  # Slack knows no such person
    assert status(core, request.id) == RequestStatus.PENDING_APPROVAL
    press(api, clock, "U0LEADER01", APPROVE, request.id)
    clock.advance(timedelta(seconds=1))  # Slack signs each press anew
    press(api, clock, "U0LEADER01", APPROVE, request.id)  # a stale button
    said = [e["text"] for e in slack.called("chat.postEphemeral")]
    assert len(said) == 4
    assert "nobody approves or rejects a request they filed" in said[0]
    assert "not a sekisho user" in said[1]
    assert "not a sekisho user" in said[2]
    assert "already succeeded; it takes no more decisions" in said[3]
    assert len(refusals(core)) == 4


def test_forged_replayed_and_stale_requests_are_refused_and_audited(
    core: Core, slack: SlackStandIn, api: TestClient, clock: ManualClock
) -> None:
    request = core.workflow.file(MEMBER, draft())
    asked(core, slack)
    body = button_press("U0LEADER01", APPROVE, str(request.id), CHANNEL, "1700000000.000001")
    now = int(clock.now().timestamp())
    forged = signed("not-the-secret", body, now)
    assert api.post("/slack/interactions", content=body, headers=forged).status_code == 401
    old = signed(SECRET, body, now - 6 * 60)  # outside Slack's five minutes
    assert api.post("/slack/interactions", content=body, headers=old).status_code == 401
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    assert api.post("/slack/interactions", content=body, headers=unsigned).status_code == 401
    assert status(core, request.id) == RequestStatus.PENDING_APPROVAL
    good = signed(SECRET, body, now)
    assert api.post("/slack/interactions", content=body, headers=good).status_code == 200
    replayed = api.post("/slack/interactions", content=body, headers=good)
    assert replayed.status_code == 401
    assert refusals(core) == ["the Slack signature is missing or wrong"] * 3 + [
        "the same signed request came twice"
    ]


def test_a_template_that_asks_for_a_step_up_offers_only_its_page(
    core: Core, slack: SlackStandIn, api: TestClient, clock: ManualClock
) -> None:
    text = example_with_step_up("{within: 5m, factor: passkey}") + notifications(slack.url)
    core.models.load(text, "slack.yaml", ADMIN)
    request = core.workflow.file(MEMBER, draft())
    assert buttons(asked(core, slack)) == ["link"]
    press(api, clock, "U0LEADER01", APPROVE, request.id)  # a press forged from an old message
    assert status(core, request.id) == RequestStatus.PENDING_APPROVAL
    [said] = slack.called("chat.postEphemeral")
    assert "needs a passkey" in said["text"]


def test_a_template_may_keep_decisions_out_of_chat(core: Core, slack: SlackStandIn) -> None:
    text = EXAMPLE_TEXT.replace(
        "    auto_approve: false\n", "    auto_approve: false\n    chat_approval: false\n", 1
    )
    core.models.load(text + notifications(slack.url), "slack.yaml", ADMIN)
    core.workflow.file(MEMBER, draft())
    assert buttons(asked(core, slack)) == ["link"]


def test_the_slash_command_files_a_request(
    core: Core, slack: SlackStandIn, api: TestClient, clock: ManualClock
) -> None:
    text = (
        'request AddUserToGroup ProdMemberWorkGroup 2h "rotate the merchant key" '
        'target="payment console" change=rotate rollback="restore the key"'
    )
    body = f"command=%2Fsekisho&user_id=U0MEMBER01&channel_id={CHANNEL}&text={quote(text)}"
    answer = post(api, clock, "/slack/commands", body)
    assert answer.status_code == 200
    assert answer.json()["response_type"] == "ephemeral"
    assert "Request #1 filed" in answer.json()["text"]
    assert status(core, 1) == RequestStatus.PENDING_APPROVAL
    wrong = post(api, clock, "/slack/commands", "command=%2Fsekisho&user_id=U0MEMBER01&text=help")
    assert "usage: /sekisho request" in wrong.json()["text"]


def test_without_a_slack_app_the_endpoints_are_not_there(core: Core, api: TestClient) -> None:
    """Nobody can fill the audit trail by posting at a Slack endpoint nothing uses."""
    body = button_press("U0LEADER01", APPROVE, "1", CHANNEL, "1700000000.000001")
    headers = signed(SECRET, body, int(core.now().timestamp()))
    assert api.post("/slack/interactions", content=body, headers=headers).status_code == 404
    assert api.post("/slack/commands", content="text=x", headers=headers).status_code == 404
    assert refusals(core) == []
