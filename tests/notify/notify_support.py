"""Helpers for the notification tests: the example model routed to channels, and flows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sekisho.domain.actor import Actor
from sekisho.services.core import Core
from sekisho.services.views import RequestView
from sekisho.services.workflow import RequestDraft
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


def run_in_terminal(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str]:
    """`sekisho ARGS...` in its own process with a pseudo-terminal as stdout and stderr, as an
    operator sees it: (exit code, everything it printed, with CR LF made LF)."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", "from sekisho.cli.main import main; main()", *args],
        env={**env, "TERM": "xterm", "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
    return code, output.decode(errors="replace").replace("\r\n", "\n")


def plain(printed: str) -> str:
    """Terminal output without its colours (SGR sequences)."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", printed)
