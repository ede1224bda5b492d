"""A malformed channel URL (`https://[::1/...`, an unbalanced `[`) is a failed delivery like any
other: recorded, retried with backoff, given up after a day, shown as failing, and never quoted
(a secret URL is the credential). Through the real dispatcher and the real CLI."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from notify_support import (
    SLACK_URL_ENV,
    WEBHOOK_KEY_ENV,
    file,
    load,
    with_notifications,
)
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.access import Channel, ChannelType
from sekisho.domain.actor import Actor
from sekisho.notify import Delivery, DeliveryFailed, Message, config_problems, open_sender
from sekisho.notify.email import EmailSender
from sekisho.store.tables import NotificationRow
from terminal import run_in_terminal

HOOK_URL_ENV = "SEKISHO_TEST_HOOK_URL"
TOKEN = "T0KEN-5ecret-" + "9f3a"  # what must never show: the secret part of the URL
BAD_URLS = [
    f"https://[::1/hooks/{TOKEN}",  # an unbalanced [: urlsplit raises ValueError
    f"https://[::1]:99999/hooks/{TOKEN}",  # a port out of range
    f"https://hooks.example.com:x{TOKEN}/",  # a port that is not a number
    f"https://[v9.{TOKEN}]/hooks",  # an IP literal that is no address
    f"https://hooks.example.com/{TOKEN}\n",  # a line break
    f"https://user:{TOKEN}@[::1/x",  # the credential in the user part
]
CHANNELS = f"""\
    - {{name: hook, type: webhook, url_env: {HOOK_URL_ENV}, secret_env: {WEBHOOK_KEY_ENV}}}
    - {{name: team, type: slack, url_env: {SLACK_URL_ENV}}}
"""
ROUTES = "    - {events: ['*'], channels: [hook, team]}\n"
MESSAGE = Message("notify.test", "t", "s", "https://sekisho.example.com/", "2026-11-29T09:00:00Z")


def shown(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`sekisho ARGS` on a real terminal: its exit code and what a person reads there."""
    screen = run_in_terminal(*args, env=env, columns=200)
    return screen.code, screen.plain


@pytest.fixture
def clock() -> ManualClock:
    # The commands run on the wall clock: start this one there too (messages are due at once).
    return ManualClock(datetime.now(UTC) - timedelta(minutes=1))


def secret_free(text: str) -> bool:
    return TOKEN not in text and "5ecret" not in text and "[::1/" not in text


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("kind", [ChannelType.WEBHOOK, ChannelType.SLACK])
def test_every_http_channel_fails_a_malformed_secret_url_as_a_delivery(
    kind: ChannelType, url: str
) -> None:
    channel = Channel("c", kind, url_env="URL", secret_env="KEY")
    environ = {"URL": url, "KEY": "k" * 32}
    with pytest.raises(DeliveryFailed) as failed:  # nothing else: it would be logged whole
        open_sender(channel, environ).send(Delivery("k" * 32, "notify.test", MESSAGE))
    assert secret_free(str(failed.value)), failed.value
    assert "URL" in str(failed.value)
    (problem,) = config_problems(channel, environ)  # `notify status` says so before a send
    assert secret_free(problem)
    assert "not a valid" in problem


@pytest.mark.parametrize("endpoint", ["https://[::1/sns", "http://127.0.0.1:x/", "https://a b/"])
def test_an_sns_channel_with_a_malformed_endpoint_fails_as_a_delivery(endpoint: str) -> None:
    channel = Channel(
        "reports",
        ChannelType.SNS,
        topic_arn="arn:aws:sns:us-east-1:123456789012:reports",
        endpoint_url=endpoint,
    )
    with pytest.raises(DeliveryFailed, match="endpoint_url is not a valid URL"):
        open_sender(channel, {}).send(Delivery("k" * 32, "notify.test", MESSAGE))


@pytest.mark.parametrize("host", ["a" * 70 + ".example.com", "[::1", "mail\x00.example.com"])
def test_an_smtp_host_that_cannot_be_resolved_as_a_name_fails_as_a_delivery(host: str) -> None:
    sender = EmailSender(
        host=host,
        port=25,
        sender="sekisho@example.com",
        to=("ops@example.com",),
        timeout=2,
        starttls=False,
        tls=None,
    )
    with pytest.raises(DeliveryFailed):
        sender.send(Delivery("k" * 32, "notify.test", MESSAGE))


def bad_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    environ = {
        HOOK_URL_ENV: BAD_URLS[0],
        SLACK_URL_ENV: f"https://[::1/services/T000/B000/{TOKEN}",
        WEBHOOK_KEY_ENV: os.urandom(16).hex(),
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return environ


def test_the_dispatcher_retries_a_malformed_url_on_schedule_then_gives_up(
    core: Core, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_environment(monkeypatch)
    load(core, with_notifications(CHANNELS, ROUTES))
    file(core)
    dispatcher = core.new_dispatcher()
    created = clock.now()
    waits: list[timedelta] = []
    with structlog.testing.capture_logs() as logs:
        report = dispatcher.run_pass()  # before the fix: ValueError out of the pass
        assert len(report.failed) == 2  # one per channel, each a failed delivery
        assert all(secret_free(e) and "not a valid URL" in e for e in report.failed.values())
        while True:
            due = dispatcher.next_due()
            if due is None:
                break
            waits.append(due - clock.now())
            clock.set(due)
            report = dispatcher.run_pass()
            assert report.delivered == []
    assert clock.now() - created >= core.settings.notify_give_up  # the normal schedule ...
    assert clock.now() - created < core.settings.notify_give_up + timedelta(minutes=11)
    assert waits[:4] == [timedelta(seconds=s) for s in (5, 10, 20, 40)]  # ... with backoff
    assert max(waits) == core.settings.notify_retry_max

    with core.db.read() as s:
        rows = list(s.scalars(select(NotificationRow)))
    assert {r.status for r in rows} == {"failed"}  # given up: shown as such, not retried
    assert all(r.attempts == len(waits) + 1 for r in rows)
    status = {c.name: c for c in core.outbox.status(Actor("admin01", "test"))}
    for name in ("hook", "team"):
        assert not status[name].healthy
        assert status[name].failed == 1
        assert "not a valid URL" in (status[name].last_error or "")
        assert all(secret_free(p) for p in status[name].problems)
        assert status[name].problems  # the variable is set, but to no valid URL
    assert logs, "the failures are logged"
    assert all(secret_free(repr(entry)) for entry in logs)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_commands_say_a_malformed_url_fails_in_one_line_without_showing_it(
    core: Core, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environ = bad_environment(monkeypatch)
    channel_env = {"hook": HOOK_URL_ENV, "team": SLACK_URL_ENV}
    load(core, with_notifications(CHANNELS, ROUTES))
    file(core)
    env = {
        **os.environ,
        **environ,
        "SEKISHO_DATABASE_URL": core.db.url,
        "SEKISHO_DATA_DIR": str(tmp_path / "cli-data"),
    }
    code, printed = shown(env, "notify", "dispatch")  # it logs to the terminal too
    assert code == 1, printed
    assert "failed 2 (to be retried)" in printed
    assert "Traceback" not in printed
    assert secret_free(printed)

    for channel in ("hook", "team"):
        code, printed = shown(env, "notify", "test", channel)
        assert code == 1, printed
        (line,) = printed.strip().splitlines()
        assert line.startswith(f"channel {channel}: not delivered: ")
        assert f"the URL in environment variable {channel_env[channel]} is not a valid URL" in line
        assert secret_free(printed)

    code, printed = shown(env, "notify", "status")
    assert code == 1, printed
    assert re.search(r"hook\s.*\bfailing\b", printed), printed
    assert re.search(r"team\s.*\bfailing\b", printed), printed
    assert "hook: last error" in printed
    assert "team: last error" in printed
    assert secret_free(printed)
