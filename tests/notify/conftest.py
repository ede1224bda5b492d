"""Fixtures for the notification tests: real receivers, and the example model routed to them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_support import SLACK_URL_ENV, SMTP_PASSWORD_ENV, WEBHOOK_KEY_ENV, Topic
from receivers import HttpReceiver, MotoServer, SmtpReceiver, http_receiver, smtp_receiver


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpReceiver]:
    key = os.urandom(32).hex()
    monkeypatch.setenv(WEBHOOK_KEY_ENV, key)
    with http_receiver("webhook", key.encode()) as receiver:
        yield receiver


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpReceiver]:
    with http_receiver("slack") as receiver:
        monkeypatch.setenv(SLACK_URL_ENV, receiver.url + "/services/T000/B000/secret-token")
        yield receiver


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SmtpReceiver]:
    with smtp_receiver(tmp_path / "smtp") as receiver:
        monkeypatch.setenv(SMTP_PASSWORD_ENV, receiver.password)
        yield receiver


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def sns(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Topic:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }.items():
        monkeypatch.setenv(name, value)
    arn, queue = moto.topic_with_queue(f"sekisho-{uuid.uuid4().hex[:8]}")
    return Topic(arn, queue)
