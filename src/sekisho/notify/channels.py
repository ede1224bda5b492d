"""A channel from the model -> a sender, with its secrets read from the environment now."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sekisho.domain.access import Channel, ChannelType
from sekisho.notify.base import (
    DeliveryFailed,
    Sender,
    from_env,
    parses_as_url,
    safe_transport,
    tls_context,
)
from sekisho.notify.slack_app import Receipts

if TYPE_CHECKING:
    from sekisho.notify.slack_app import Receipts


def open_sender(
    channel: Channel, environ: Mapping[str, str] | None = None, receipts: Receipts | None = None
) -> Sender:
    """A ready sender, or DeliveryFailed saying what is missing (never a secret's value).
    `receipts`: what a Slack app posted earlier about a request (to update it in place)."""
    env = os.environ if environ is None else environ
    timeout = channel.timeout.total_seconds()
    if channel.type is ChannelType.SLACK_APP:
        from sekisho.notify.slack_app import open_slack_app

        token = from_env(env, channel.bot_token_env, "the Slack bot token")
        assert channel.slack_channel is not None  # the model's checks say so
        found = receipts or (lambda _channel, _request: [])
        return open_slack_app(
            channel.name, token, channel.slack_channel, channel.endpoint_url, timeout, found
        )
    if channel.type is ChannelType.WEBHOOK:
        from sekisho.notify.webhook import WebhookSender

        key = from_env(env, channel.secret_env, "the webhook's signing key")
        url = channel.url or _checked(
            from_env(env, channel.url_env, "the webhook's URL"), channel.url_env
        )
        return WebhookSender(
            url,
            key.encode(),
            timeout=timeout,
            ca_file=channel.ca_file,
            secret_url=channel.url is None,
        )
    if channel.type is ChannelType.SLACK:
        from sekisho.notify.slack import SlackSender

        url = _checked(from_env(env, channel.url_env, "the Slack webhook URL"), channel.url_env)
        return SlackSender(url, timeout=timeout)
    if channel.type is ChannelType.EMAIL:
        from sekisho.notify.email import EmailSender

        assert channel.host is not None  # the model's checks say so
        assert channel.sender is not None
        password = None
        if channel.username:
            password = from_env(env, channel.password_env, "the SMTP password")
        return EmailSender(
            host=channel.host,
            port=channel.port,
            sender=channel.sender,
            to=channel.to,
            timeout=timeout,
            starttls=channel.starttls,
            tls=tls_context(channel.ca_file) if channel.starttls else None,
            username=channel.username,
            password=password,
        )
    if channel.type is ChannelType.SSF:  # bootstrap opens a stream's pusher, with its key
        raise DeliveryFailed("a Shared Signals stream has no sender of its own here")
    from sekisho.notify.sns import SnsSender

    assert channel.topic_arn is not None
    return SnsSender(channel.topic_arn, timeout=timeout, endpoint_url=channel.endpoint_url)


def _checked(url: str, name: str | None) -> str:
    """A URL from the environment must be one (as httpx, which sends to it, reads URLs) and
    gets the model's transport rule: https, or http only to a loopback address. The error
    names the variable, never the URL (it is a secret)."""
    if not parses_as_url(url):
        raise DeliveryFailed(f"the URL in environment variable {name} is not a valid URL")
    if safe_transport(url):
        return url
    raise DeliveryFailed(
        f"the URL in environment variable {name} must be https (http only to loopback)"
    )


def config_problems(channel: Channel, environ: Mapping[str, str] | None = None) -> list[str]:
    """What keeps this channel from sending, as far as can be told without sending."""
    env = os.environ if environ is None else environ
    problems = []
    wanted = [
        (channel.secret_env, "the signing key"),
        (channel.url_env, "the URL"),
        (channel.password_env if channel.username else None, "the SMTP password"),
        (channel.bot_token_env, "the Slack bot token"),
        (channel.signing_secret_env, "the Slack signing secret"),
    ]
    for name, what in wanted:
        if name and not env.get(name):
            problems.append(f"environment variable {name} ({what}) is not set")
    if channel.url_env and env.get(channel.url_env):
        try:
            _checked(env[channel.url_env], channel.url_env)
        except DeliveryFailed as exc:
            problems.append(str(exc))
    if channel.ca_file and not Path(channel.ca_file).is_file():
        problems.append(f"ca_file {channel.ca_file} is not a readable file")
    return problems


__all__ = ["DeliveryFailed", "config_problems", "open_sender"]
