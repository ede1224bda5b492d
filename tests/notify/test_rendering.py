"""What people type (a reason, a comment, change information) reaches Slack and e-mail as
text: never a mention, a disguised link, markup or an extra mail header. Through the real
dispatcher, at a real Slack receiver and a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import escape
from typing import Any

from notify_support import channels_yaml, file, load, with_notifications
from receivers import HttpReceiver, SmtpReceiver

from sekisho.bootstrap import Core
from sekisho.notify import Delivery, Message
from sekisho.notify.base import tls_context
from sekisho.notify.email import EmailSender
from sekisho.notify.render import slack_payload
from support import INFO, LEADER, MEMBER2

SLACK_ONLY = "    - {events: ['*'], channels: [team]}\n"
MAIL_ONLY = "    - {events: ['*'], channels: [mail]}\n"
REASON = "<!channel> & <http://evil.example/|the usual console> <@U0ADMIN> @here"
COMMENT = "ok <!here|@here> <https://evil.example/login|sekisho login>"
CHANGE = '<script>alert(1)</script> "><img src=x onerror=alert(2)>'
ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")  # an & that does not start one of Slack's escapes


def text_objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every Block Kit text object in a payload."""
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield node
        for value in node.values():
            yield from text_objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from text_objects(value)


def assert_only_text(payload: dict[str, Any]) -> None:
    for obj in text_objects(payload["blocks"]):
        if obj["type"] != "mrkdwn":
            continue
        text = obj["text"]
        assert "<" not in text, text  # no <!channel>, no <url|label>, no <@user>
        assert ">" not in text, text
        assert not ENTITY.search(text), text  # escaped whole, never cut inside &lt;
        # Without verbatim, Slack turns a typed "@here" or a bare channel name into a live
        # mention or link ("automatic parsing"); with it, it shows the text as written.
        assert obj.get("verbatim") is True, obj


def test_slack_shows_a_reason_and_a_comment_as_text(core: Core, slack: HttpReceiver) -> None:
    load(core, with_notifications(channels_yaml(slack=slack), SLACK_ONLY))
    filed = file(core, MEMBER2, reason=REASON, info={**INFO, "change": CHANGE})
    core.workflow.approve(LEADER, filed.id, COMMENT)
    report = core.new_dispatcher().run_pass()
    assert report.failed == {}
    payloads = slack.bodies()
    assert {len(payloads)} != {0}
    for payload in payloads:
        assert_only_text(payload)
    shown = "\n".join(o["text"] for p in payloads for o in text_objects(p["blocks"]))
    assert "&lt;!channel&gt; &amp; &lt;http://evil.example/|the usual console&gt;" in shown
    assert "&lt;!here|@here&gt; &lt;https://evil.example/login|sekisho login&gt;" in shown


def test_a_long_reason_is_cut_between_characters_not_inside_an_escape() -> None:
    message = Message(
        "approval.needed",
        "Request #1 needs approval",
        "<" * 2000,
        "https://sekisho.example.com/requests/1",
        "2026-11-29T09:00:00Z",
        facts=(("Reason", "<" * 500), ("Change", "&" * 700)),
        lines=("<!channel>" * 400,),
    )
    assert_only_text(slack_payload(message))


def test_mail_escapes_user_text_in_its_html_and_keeps_it_out_of_the_headers(
    core: Core, smtp: SmtpReceiver
) -> None:
    load(core, with_notifications(channels_yaml(smtp=smtp), MAIL_ONLY))
    filed = file(core, MEMBER2, reason=REASON, info={**INFO, "change": CHANGE})
    core.workflow.approve(LEADER, filed.id, COMMENT)
    assert core.new_dispatcher().run_pass().failed == {}
    mails = smtp.to("member02@example.com")
    assert mails
    for mail in mails:
        html = mail.html
        assert "<script>" not in html
        assert "<img" not in html
        assert 'href="http://evil' not in html
        assert "evil" not in str(mail.message["Subject"])
    assert any(escape(REASON) in m.html for m in mails)
    assert any(escape(CHANGE) in m.html for m in mails)
    assert any(CHANGE in m.text for m in mails)  # the plain part says it as typed


def test_a_line_break_in_a_subject_cannot_add_a_mail_header(smtp: SmtpReceiver) -> None:
    message = Message(
        "notify.test",
        "Request #1 approved\r\nBcc: everyone@evil.example\r\nX-Injected: yes",
        "summary",
        "https://sekisho.example.com/requests/1",
        "2026-11-29T09:00:00Z",
    )
    sender = EmailSender(
        host="127.0.0.1",
        port=smtp.port,
        sender="sekisho@example.com",
        to=("ops@example.com",),
        timeout=5,
        starttls=True,
        tls=tls_context(str(smtp.ca_file)),
        username=smtp.username,
        password=smtp.password,
    )
    try:
        sender.send(Delivery("k" * 32, "notify.test", message))
    finally:
        sender.close()
    (mail,) = smtp.to("ops@example.com")
    assert mail.rcpt_tos == ["ops@example.com"]
    assert mail.message["Bcc"] is None
    assert mail.message["X-Injected"] is None
    assert str(mail.message["Subject"]).startswith("Request #1 approved")
