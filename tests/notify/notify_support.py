"""Helpers for the notification tests: the example model routed to channels, and flows."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sekisho.bootstrap import Core
from sekisho.domain.actor import Actor
from sekisho.domain.drafts import RequestDraft
from sekisho.services.views import RequestView
from support import EXAMPLE_TEXT, LEADER, MEMBER, draft

if TYPE_CHECKING:
    from receivers import HttpReceiver, MotoServer, SmtpReceiver

WEBHOOK_KEY_ENV = "SEKISHO_TEST_WEBHOOK_KEY"
SLACK_URL_ENV = "SEKISHO_TEST_SLACK_URL"
SMTP_PASSWORD_ENV = "SEKISHO_TEST_SMTP_PASSWORD"

ALL_ROUTES = """\
    - {events: ["*"], channels: [hook, mail]}
    - {events: [approval.needed, request.decided], channels: [team]}
    - {events: [expiry.report, reconcile.report], channels: [reports]}
"""


@dataclass
class Topic:
    arn: str
    queue: str


def channels_yaml(
    *,
    webhook: HttpReceiver | None = None,
    slack: HttpReceiver | None = None,
    smtp: SmtpReceiver | None = None,
    sns: Topic | None = None,
    moto: MotoServer | None = None,
) -> str:
    lines = []
    if webhook is not None:
        lines.append(
            f'    - {{name: hook, type: webhook, url: "{webhook.url}", '
            f"secret_env: {WEBHOOK_KEY_ENV}}}"
        )
    if slack is not None:
        lines.append(f"    - {{name: team, type: slack, url_env: {SLACK_URL_ENV}}}")
    if smtp is not None:
        lines.append(
            f"    - {{name: mail, type: email, host: 127.0.0.1, port: {smtp.port}, "
            f"sender: sekisho@example.com, username: {smtp.username}, "
            f'password_env: {SMTP_PASSWORD_ENV}, ca_file: "{smtp.ca_file}"}}'
        )
    if sns is not None:
        assert moto is not None
        lines.append(
            f'    - {{name: reports, type: sns, topic_arn: "{sns.arn}", '
            f'endpoint_url: "{moto.endpoint}"}}'
        )
    return "\n".join(lines) + "\n"


def with_notifications(channels: str, routes: str = ALL_ROUTES, remind_before: str = "15m") -> str:
    """The example model with a notifications section (routes may name absent channels only
    if those channels are given)."""
    return (
        EXAMPLE_TEXT
        + f"\nnotifications:\n  remind_before: {remind_before}\n  channels:\n"
        + channels
        + "  routes:\n"
        + routes
    )


def load(core: Core, text: str) -> None:
    core.models.load(text, "notify.yaml", Actor.system("test"))


def file(core: Core, actor: Actor = MEMBER, /, **overrides: object) -> RequestView:
    return core.workflow.file(actor, draft(**overrides))


def granted(core: Core, actor: Actor = MEMBER, /, **overrides: object) -> RequestView:
    """File a request and have leader01 approve it: the runbook runs."""
    return core.workflow.approve(LEADER, file(core, actor, **overrides).id, "ok, go ahead")


def remove_draft(group: str = "ProdMemberWorkGroup") -> RequestDraft:
    return RequestDraft(template="RemoveUserFromGroup", group=group, reason="work finished early")


def dispatch_process(core: Core, data_dir: Path) -> subprocess.Popen[bytes]:
    """`sekisho notify dispatch` in a process of its own on `core`'s database (to kill)."""
    env = {**os.environ, "SEKISHO_DATABASE_URL": core.db.url, "SEKISHO_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-c", "from sekisho.cli.main import main; main()", "notify", "dispatch"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
