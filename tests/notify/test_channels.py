"""Each channel against a real receiver on 127.0.0.1: what arrives, signed, and how it fails."""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
from typing import Any

import pytest
from notify_support import Topic
from receivers import HttpReceiver, MotoServer, SmtpReceiver, http_receiver, sns_event, sns_key

from sekisho.domain.access import Channel, ChannelType
from sekisho.notify import Delivery, DeliveryFailed, Message, config_problems, open_sender
from sekisho.notify.email import EmailSender
from sekisho.notify.sns import SnsSender
from sekisho.notify.webhook import InvalidSignature, WebhookSender, sign, verify

MESSAGE = Message(
    event="request.decided",
    title="Request #7 approved by leader01",
    summary='Leader One (leader01) approved it: "OK <go> & ahead". The runbook runs now.',
    link="https://sekisho.example.com/requests/7",
    link_label="Open request #7",
    occurred_at="2026-11-29T09:00:00Z",
    facts=(("Request", "#7 (AddUserToGroup)"), ("Reason", "rotate the key\nand restart")),
    request_id=7,
    template="AddUserToGroup",
    recipients=(("member01", "requester"),),
    data={"decision": "approved"},
)


def delivery(key: str = "k" * 32, recipient: str | None = None) -> Delivery:
    return Delivery(key, MESSAGE.event, MESSAGE, recipient)


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed now: connections are refused


# -- the generic webhook --------------------------------------------------------------------------


def test_a_webhook_arrives_signed_with_its_key_and_the_request_s_link(
    webhook: HttpReceiver,
) -> None:
    sender = WebhookSender(webhook.url, webhook.key, timeout=5)
    assert sender.send(delivery("a" * 32)) == "HTTP 200"
    sender.close()
    (body,) = webhook.bodies()
    assert body["id"] == "a" * 32
    assert body["event"] == "request.decided"
    assert body["url"] == "https://sekisho.example.com/requests/7"
    assert body["request_id"] == 7
    assert body["facts"]["Reason"] == "rotate the key\nand restart"
    assert body["recipients"] == [{"user": "member01", "role": "requester"}]
    assert webhook.rejected == []


def test_a_receiver_rejects_a_forged_a_tampered_and_a_replayed_webhook() -> None:
    key, body, now = b"s3cret", b'{"id":"x"}', time.time()
    stamp = int(now)
    good = {
        "X-Sekisho-Timestamp": str(stamp),
        "X-Sekisho-Signature": sign(key, stamp, body),
        "X-Sekisho-Delivery": "x",
    }
    assert verify(key, good, body, now=now) == "x"
    with pytest.raises(InvalidSignature, match="mismatch"):
        verify(b"other key", good, body, now=now)
    with pytest.raises(InvalidSignature, match="mismatch"):
        verify(key, good, b'{"id":"y"}', now=now)
    with pytest.raises(InvalidSignature, match="replay"):
        verify(key, good, body, now=now + 301)
    moved = {**good, "X-Sekisho-Timestamp": str(stamp + 1)}  # a fresh stamp on an old body
    with pytest.raises(InvalidSignature, match="mismatch"):
        verify(key, moved, body, now=now)
    rotating = {**good, "X-Sekisho-Signature": f"v1=00ff,{sign(key, stamp, body)}"}
    assert verify(key, rotating, body, now=now) == "x"


def test_a_webhook_with_the_wrong_key_is_refused_by_the_receiver(webhook: HttpReceiver) -> None:
    sender = WebhookSender(webhook.url, b"not the receiver's key", timeout=5)
    with pytest.raises(DeliveryFailed, match="HTTP 401"):
        sender.send(delivery())
    assert webhook.rejected == ["signature mismatch"]
    assert webhook.accepted == {}


def test_an_old_timestamp_is_refused_as_a_replay(webhook: HttpReceiver) -> None:
    sender = WebhookSender(webhook.url, webhook.key, timeout=5, wall=lambda: time.time() - 600)
    with pytest.raises(DeliveryFailed, match="HTTP 401"):
        sender.send(delivery())
    assert webhook.rejected == ["timestamp outside the tolerance (a replay, or a wrong clock)"]


def test_the_same_key_twice_is_taken_once(webhook: HttpReceiver) -> None:
    sender = WebhookSender(webhook.url, webhook.key, timeout=5)
    sender.send(delivery("b" * 32))
    sender.send(delivery("b" * 32))
    assert list(webhook.accepted) == ["b" * 32]
    assert webhook.duplicates == ["b" * 32]


def test_a_webhook_url_from_the_environment_never_shows_in_an_error() -> None:
    port = refused_port()
    secret_url = f"http://127.0.0.1:{port}/hooks/tok-{os.urandom(8).hex()}?sig=zzz9"
    channel = Channel("hook", ChannelType.WEBHOOK, url_env="HOOK_URL", secret_env="HOOK_KEY")
    sender = open_sender(channel, {"HOOK_URL": secret_url, "HOOK_KEY": "k" * 32})
    with pytest.raises(DeliveryFailed) as failed:
        sender.send(delivery())
    assert "tok-" not in str(failed.value)
    assert "zzz9" not in str(failed.value)


def test_a_malformed_secret_url_fails_as_a_delivery_without_showing_it() -> None:
    for url in (
        "https://hooks.example.com/T0K\x00EN-abc",
        "https://" + "a" * 70 + ".com/T0KEN-abc",
    ):
        channel = Channel("team", ChannelType.SLACK, url_env="U")
        with pytest.raises(DeliveryFailed) as failed:  # not another exception, logged whole
            open_sender(channel, {"U": url}).send(delivery())
        assert "T0K" not in str(failed.value)


# -- Slack --------------------------------------------------------------------------------------


def test_slack_gets_block_kit_with_a_button_to_the_request(slack: HttpReceiver) -> None:
    sender = open_sender(
        Channel("team", ChannelType.SLACK, url_env="SEKISHO_TEST_SLACK_URL"), os.environ
    )
    sender.send(delivery("c" * 32))
    sender.close()
    (payload,) = slack.bodies()
    blocks = payload["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Request #7 approved by leader01"},
    }
    assert "&lt;go&gt; &amp; ahead" in blocks[1]["text"]["text"]  # Slack's escaping
    assert blocks[2]["fields"][1]["text"] == "*Reason*\nrotate the key\nand restart"
    button = blocks[3]["elements"][0]
    assert button["url"] == "https://sekisho.example.com/requests/7"
    assert payload["text"].endswith("<https://sekisho.example.com/requests/7|Open request #7>")


def test_slack_s_secret_url_never_shows_in_an_error() -> None:
    port = refused_port()
    url = f"http://127.0.0.1:{port}/services/T0/B0/XyZsecret123"
    sender = open_sender(Channel("team", ChannelType.SLACK, url_env="U"), {"U": url})
    with pytest.raises(DeliveryFailed) as failed:
        sender.send(delivery())
    assert "XyZsecret123" not in str(failed.value)


def test_a_slack_error_code_is_kept_for_the_operator() -> None:
    with http_receiver("slack") as receiver:
        receiver.fail_next, receiver.fail_status = 1, 404
        sender = open_sender(Channel("t", ChannelType.SLACK, url_env="U"), {"U": receiver.url})
        with pytest.raises(DeliveryFailed, match="HTTP 404 try later"):
            sender.send(delivery())


def test_a_missing_variable_is_named_without_any_value() -> None:
    channel = Channel("hook", ChannelType.WEBHOOK, url="https://x.example", secret_env="KEY")
    with pytest.raises(DeliveryFailed, match=r"environment variable KEY \(.*\) is not set"):
        open_sender(channel, {})
    assert config_problems(channel, {}) == ["environment variable KEY (the signing key) is not set"]
    assert config_problems(channel, {"KEY": "x"}) == []
    mail = Channel("m", ChannelType.EMAIL, host="h", sender="s@x.org", ca_file="/no/such.pem")
    assert config_problems(mail, {}) == ["ca_file /no/such.pem is not a readable file"]


# -- e-mail ---------------------------------------------------------------------------------------


def email_channel(smtp: SmtpReceiver, **overrides: Any) -> Channel:
    fields: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": smtp.port,
        "sender": "sekisho@example.com",
        "username": smtp.username,
        "password_env": "SEKISHO_TEST_SMTP_PASSWORD",
        "ca_file": str(smtp.ca_file),
    }
    fields.update(overrides)
    return Channel("mail", ChannelType.EMAIL, **fields)


def test_mail_goes_over_starttls_with_text_html_and_the_key_as_message_id(
    smtp: SmtpReceiver,
) -> None:
    sender = open_sender(email_channel(smtp))
    receipt = sender.send(delivery("d" * 32, "member01@example.com"))
    sender.send(delivery("e" * 32, "leader01@example.com"))  # the same connection, kept
    sender.close()
    assert receipt == "SMTP 250 to 1 recipient(s)"
    (mail,) = smtp.to("member01@example.com")
    assert mail.mail_from == "sekisho@example.com"
    assert mail.message["Message-ID"] == f"<{'d' * 32}@sekisho>"
    assert mail.message["X-Sekisho-Delivery"] == "d" * 32
    assert mail.message["Subject"] == "Request #7 approved by leader01"
    assert "Open request #7: https://sekisho.example.com/requests/7" in mail.text
    assert "  Reason:  rotate the key\n           and restart" in mail.text
    assert '<a href="https://sekisho.example.com/requests/7">Open request #7</a>' in mail.html
    assert "&quot;OK &lt;go&gt; &amp; ahead&quot;" in mail.html
    assert len(smtp.to("leader01@example.com")) == 1


def test_fixed_recipients_get_one_copy(smtp: SmtpReceiver) -> None:
    sender = open_sender(email_channel(smtp, to=("ops@example.com", "sec@example.com")))
    assert sender.send(delivery()) == "SMTP 250 to 2 recipient(s)"
    (mail,) = smtp.to("ops@example.com")
    assert mail.rcpt_tos == ["ops@example.com", "sec@example.com"]


def test_a_wrong_password_fails_without_showing_it(
    smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEKISHO_TEST_SMTP_PASSWORD", "wrong-password-42")
    sender = open_sender(email_channel(smtp))
    with pytest.raises(DeliveryFailed, match="SMTP 535") as failed:
        sender.send(delivery(recipient="member01@example.com"))
    assert "wrong-password-42" not in str(failed.value)
    assert smtp.mails == {}


def test_a_server_whose_certificate_is_not_trusted_gets_nothing(smtp: SmtpReceiver) -> None:
    sender = open_sender(email_channel(smtp, ca_file=None))  # the system's CAs only
    with pytest.raises(DeliveryFailed, match="certificate was not accepted"):
        sender.send(delivery(recipient="member01@example.com"))
    assert smtp.mails == {}


def test_no_starttls_offered_means_no_mail(tmp_path: Any) -> None:
    from aiosmtpd.controller import Controller
    from receivers import free_port

    class Sink:
        got: list[Any] = []

        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            self.got.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)  # no TLS at all
    controller.start()
    try:
        sender = EmailSender(
            host="127.0.0.1",
            port=port,
            sender="sekisho@example.com",
            to=(),
            timeout=5,
            starttls=True,
            tls=ssl.create_default_context(),
        )
        with pytest.raises(DeliveryFailed, match="STARTTLS"):
            sender.send(delivery(recipient="member01@example.com"))
        assert Sink.got == []
    finally:
        controller.stop()


# -- SNS ------------------------------------------------------------------------------------------


def test_sns_publishes_text_with_the_key_and_event_as_attributes(
    moto: MotoServer, sns: Topic
) -> None:
    sender = SnsSender(sns.arn, timeout=5, endpoint_url=moto.endpoint)
    receipt = sender.send(delivery("f" * 32))
    sender.close()
    assert receipt.startswith("SNS MessageId ")
    (envelope,) = moto.received(sns.queue)
    assert sns_key(envelope) == "f" * 32
    assert sns_event(envelope) == "request.decided"
    assert envelope["Subject"] == "Request #7 approved by leader01"
    assert "Open request #7: https://sekisho.example.com/requests/7" in envelope["Message"]
    assert envelope["MessageAttributes"]["sekisho.request"]["Value"] == "7"


def test_sns_to_a_missing_topic_fails_with_aws_s_answer(moto: MotoServer, sns: Topic) -> None:
    sender = SnsSender(sns.arn + "-gone", timeout=5, endpoint_url=moto.endpoint)
    with pytest.raises(DeliveryFailed, match="SNS NotFound"):
        sender.send(delivery())


def test_the_webhook_json_is_what_the_docs_say() -> None:
    from sekisho.notify.render import webhook_body

    body = json.loads(webhook_body(MESSAGE, "g" * 32))
    assert sorted(body) == [
        "data",
        "event",
        "facts",
        "grant_id",
        "id",
        "lines",
        "occurred_at",
        "recipients",
        "request_id",
        "summary",
        "template",
        "title",
        "url",
    ]


def test_a_url_from_the_environment_must_be_https_off_this_machine() -> None:
    slack = Channel("team", ChannelType.SLACK, url_env="U")
    with pytest.raises(DeliveryFailed, match="must be https") as failed:
        open_sender(slack, {"U": "http://hooks.example.com/services/T0/B0/leak"})
    assert "leak" not in str(failed.value)
    open_sender(slack, {"U": "https://hooks.slack.com/services/T0/B0/x"}).close()
    open_sender(slack, {"U": "http://localhost:8080/x"}).close()
