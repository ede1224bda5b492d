"""The model's notifications section: channels, routes, and the rules that keep secrets out."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from textwrap import dedent, indent

import pytest

from sekisho.domain.access import ChannelType, NotifyEvent
from sekisho.model import check_text, load_text

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "model.md"
EXAMPLE = (ROOT / "examples" / "jump-account.yaml").read_text()


def with_section(body: str) -> str:
    return EXAMPLE + "\nnotifications:\n" + indent(dedent(body), "  ")


def found(text: str) -> list[tuple[str, int, str]]:
    return [(p.rule, p.line, p.path) for p in check_text(text, "n.yaml")]


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_documented_notifications_example_is_valid() -> None:
    docs = DOCS.read_text("utf-8")
    section = docs[docs.index("### `notifications`") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    short = re.search(r"## A short example\n\n```yaml\n(.*?)```", docs, re.DOTALL)
    assert short is not None
    text = short.group(1) + block.group(1)
    assert check_text(text, "docs/model.md") == []
    model = load_text(text)
    assert [c.name for c in model.notifications.channels] == [
        "ops-hook",
        "team-slack",
        "mail",
        "reports",
    ]


def test_channels_and_routes_load_into_the_model() -> None:
    model = load_text(
        with_section(
            """\
            remind_before: 30m
            channels:
              - {name: hook, type: webhook, url: "https://h.example/x", secret_env: HOOK_KEY,
                 timeout: 5s}
              - {name: mail, type: email, host: smtp.example.com, port: 465,
                 sender: sekisho@example.com, username: bot, password_env: SMTP_PW}
              - {name: ops, type: email, host: smtp.example.com, sender: s@example.com,
                 to: [ops@example.com]}
              - {name: topic, type: sns, topic_arn: "arn:aws:sns:ap-northeast-1:111111111111:t"}
            routes:
              - {events: [approval.needed], channels: [mail, hook, mail]}
              - {events: ["*"], templates: [RemoveUserFromGroup], channels: [ops]}
              - {events: [expiry.report], channels: [topic]}
            """
        )
    )
    n = model.notifications
    assert n.remind_before == timedelta(minutes=30)
    hook, mail, ops, topic = n.channels
    assert (hook.type, hook.url, hook.secret_env, hook.timeout) == (
        ChannelType.WEBHOOK,
        "https://h.example/x",
        "HOOK_KEY",
        timedelta(seconds=5),
    )
    assert (mail.port, mail.starttls, mail.personal, ops.personal) == (465, True, True, False)
    assert topic.topic_arn == "arn:aws:sns:ap-northeast-1:111111111111:t"
    names = lambda cs: [c.name for c in cs]  # noqa: E731
    assert names(n.channels_for("approval.needed", "AddUserToGroup")) == ["mail", "hook"]
    assert names(n.channels_for("approval.needed", "RemoveUserFromGroup")) == [
        "mail",
        "hook",
        "ops",
    ]
    assert names(n.channels_for("grant.ended", "AddUserToGroup")) == []
    assert names(n.channels_for(NotifyEvent.EXPIRY_REPORT)) == ["topic"]
    assert n.routed("grant.ended")  # through the "*" route, for some template


def test_no_section_means_no_channels() -> None:
    model = load_text(EXAMPLE)
    assert model.notifications.channels == ()
    assert model.notifications.channels_for("approval.needed", "AddUserToGroup") == ()


@pytest.mark.parametrize(
    ("channel", "needs"),
    [
        ("{name: c, type: webhook, url: 'https://h.example'}", "secret_env"),
        ("{name: c, type: webhook, secret_env: K}", "url"),
        ("{name: c, type: slack}", "url_env"),
        ("{name: c, type: email, sender: s@example.com}", "host"),
        ("{name: c, type: email, host: h.example}", "sender"),
        ("{name: c, type: email, host: h.example, sender: s@x.org, username: u}", "password_env"),
        ("{name: c, type: email, host: h.example, sender: s@x.org, password_env: P}", "username"),
        ("{name: c, type: sns}", "topic_arn"),
    ],
)
def test_each_type_says_what_it_needs(channel: str, needs: str) -> None:
    text = with_section(f"channels:\n  - {channel}\n")
    problems = check_text(text, "n.yaml")
    assert [(p.rule, p.line) for p in problems] == [("required", line_of(text, channel))]
    assert f"needs {needs}:" in problems[0].message


def test_a_secret_pasted_where_a_variable_name_belongs_is_never_echoed() -> None:
    secret = "xoxb-1234-SUPERSECRET"
    text = with_section(
        f"""\
        channels:
          - {{name: team, type: slack, url_env: "{secret}"}}
          - {{name: hook, type: webhook, url: "https://h.example", secret_env: "{secret}"}}
        """
    )
    problems = check_text(text, "n.yaml")
    assert [p.rule for p in problems] == ["env_name_format", "env_name_format"]
    assert all(secret not in str(p) for p in problems)


def test_secrets_in_the_model_are_refused_by_name() -> None:
    text = with_section(
        """\
        channels:
          - name: team
            type: slack
            url: https://hooks.slack.com/services/T0/B0/abc
          - name: mail
            type: email
            host: smtp.example.com
            sender: s@example.com
            username: bot
            password: hunter2
          - name: hook
            type: webhook
            url: "https://user:pw@h.example/x"
            secret_env: K
        """
    )
    problems = found(text)
    assert problems == [
        ("secret_in_model", line_of(text, "hooks.slack.com"), "notifications.channels[0].url"),
        ("required", line_of(text, "name: mail"), "notifications.channels[1]"),  # password_env
        ("secret_in_model", line_of(text, "hunter2"), "notifications.channels[1].password"),
        ("secret_in_model", line_of(text, "user:pw"), "notifications.channels[2].url"),
    ]
    assert all("hunter2" not in str(p) for p in check_text(text, "n.yaml"))


def test_url_or_url_env_not_both_and_fields_of_other_types() -> None:
    text = with_section(
        """\
        channels:
          - {name: hook, type: webhook, url: "https://h.example", url_env: U, secret_env: K,
             topic_arn: "arn:aws:sns:us-east-1:111111111111:t"}
        """
    )
    assert [(p.rule, p.path) for p in check_text(text, "n.yaml")] == [
        ("channel_setting", "notifications.channels[0].url_env"),  # both url and url_env
        ("channel_setting", "notifications.channels[0].topic_arn"),  # not a webhook's
    ]


def test_plain_http_and_clear_text_mail_only_to_loopback() -> None:
    text = with_section(
        """\
        channels:
          - {name: a, type: webhook, url: "http://127.0.0.1:9000/x", secret_env: K}
          - {name: b, type: webhook, url: "http://[::1]:9000/x", secret_env: K}
          - {name: c, type: email, host: localhost, sender: s@example.com, starttls: false}
          - {name: d, type: sns, topic_arn: "arn:aws:sns:us-east-1:111111111111:t",
             endpoint_url: "http://10.0.0.5:4566"}
        """
    )
    assert [(p.rule, p.path) for p in check_text(text, "n.yaml")] == [
        ("insecure_transport", "notifications.channels[3].endpoint_url"),
    ]


def test_a_route_with_a_mistyped_event_still_has_its_channels_checked() -> None:
    text = with_section(
        """\
        channels:
          - {name: hook, type: webhook, url: "https://h.example", secret_env: K}
        routes:
          - {events: [aproval.needed], channels: [hok]}
        """
    )
    problems = check_text(text, "n.yaml")
    assert sorted(p.rule for p in problems) == ["unknown_channel", "unknown_event"]
    messages = " / ".join(p.message for p in problems)
    assert "did you mean 'approval.needed'?" in messages
    assert "did you mean 'hook'?" in messages


def test_a_broken_notifications_section_hides_no_other_problem() -> None:
    text = EXAMPLE.replace("members: [admin01]", "members: [admin1]") + "\nnotifications: []\n"
    assert [p.rule for p in check_text(text, "n.yaml")] == ["unknown_user", "wrong_type"]


def test_an_unknown_field_suggests_the_channel_s_own() -> None:
    text = with_section(
        """\
        channels:
          - {name: hook, type: webhook, url: "https://h.example", secret_env: K, timout: 5s}
        """
    )
    (problem,) = check_text(text, "n.yaml")
    assert problem.rule == "unknown_field"
    assert "a channel has no field 'timout'; did you mean 'timeout'?" in problem.message
