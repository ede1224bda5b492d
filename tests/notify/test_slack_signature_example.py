"""Slack's own published example of a signed request ("Verifying requests from Slack": its
signing secret, timestamp, body and signature), checked by sekisho's endpoint on a clock at
that timestamp: accepted; the same with one byte changed: refused. A contract test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from test_slack_app import TOKEN, notifications

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.server import create_app
from slack_standin import running_slack
from support import ADMIN, EXAMPLE_TEXT

SLACK_EXAMPLE_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_EXAMPLE_AT = 1531420618


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.fromtimestamp(SLACK_EXAMPLE_AT, UTC))


@pytest.fixture
def api(core: Core, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("SEKISHO_SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SEKISHO_SLACK_SIGNING_SECRET", SLACK_EXAMPLE_SECRET)
    with running_slack(TOKEN, {}) as standin:
        core.models.load(EXAMPLE_TEXT + notifications(standin.url), "slack.yaml", ADMIN)
        with TestClient(create_app(core), raise_server_exceptions=False) as client:
            yield client


def test_slacks_published_signature_example_is_accepted_and_a_changed_byte_is_not(
    api: TestClient,
) -> None:
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
        "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook"
        "-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977"
        "00885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d"
        "10d2c447fce8b6703c"
    )
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    }
    changed = api.post("/slack/commands", content=body.replace("foobar", "foobaz"), headers=headers)
    assert changed.status_code == 401
    accepted = api.post("/slack/commands", content=body, headers=headers)
    assert accepted.status_code == 200  # signed by Slack: read (the person is unknown here)
    assert "not a sekisho user" in accepted.json()["text"]
