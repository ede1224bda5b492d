"""The dispatcher: retries with backoff on the ManualClock, failing channels, status, the loop.

Every message is checked at a real receiver, by its idempotency key.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from notify_support import (
    WEBHOOK_KEY_ENV,
    channels_yaml,
    file,
    granted,
    load,
    with_notifications,
)
from receivers import HttpReceiver, SmtpReceiver
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.errors import Forbidden
from sekisho.services.dispatcher import Dispatcher
from sekisho.store.tables import NotificationRow
from support import ADMIN, LEADER, MEMBER, MEMBER2

HOOK_ONLY = "    - {events: ['*'], channels: [hook]}\n"
HOOK_AND_MAIL = "    - {events: ['*'], channels: [hook, mail]}\n"


def notifications(core: Core) -> list[NotificationRow]:
    with core.db.read() as s:
        return list(s.scalars(select(NotificationRow).order_by(NotificationRow.id)))


def statuses(core: Core) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in notifications(core):
        found[row.status] = found.get(row.status, 0) + 1
    return found


def test_a_receiver_that_fails_three_times_then_answers_gets_the_message_once(
    core: Core, clock: ManualClock, webhook: HttpReceiver
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook), HOOK_ONLY))
    filed = file(core)
    webhook.fail_next = 3
    dispatcher = core.new_dispatcher()
    waits = []
    for attempt in range(1, 4):
        report = dispatcher.run_pass()
        assert list(report.failed.values()) == ["HTTP 500 Internal Server Error"]
        assert webhook.hits == attempt
        due = dispatcher.next_due()
        assert due is not None
        waits.append(due - clock.now())
        clock.set(due - timedelta(seconds=1))
        assert dispatcher.run_pass().delivered == []  # not before its retry is due
        assert webhook.hits == attempt
        clock.set(due)
    assert waits == [timedelta(seconds=5), timedelta(seconds=10), timedelta(seconds=20)]
    assert len(dispatcher.run_pass().delivered) == 1
    (body,) = webhook.bodies()
    assert body["event"] == "approval.needed"
    assert body["url"] == f"http://127.0.0.1:8470/requests/{filed.id}"
    assert (webhook.hits, len(webhook.accepted), webhook.duplicates) == (4, 1, [])
    (row,) = notifications(core)
    assert (row.status, row.attempts) == ("delivered", 4)
    assert row.last_error == "HTTP 500 Internal Server Error"  # kept, with when it happened
    assert row.delivered_at == clock.now()
    assert dispatcher.run_pass().delivered == []
    assert dispatcher.next_due() is None


def test_a_failing_channel_waits_as_one_and_holds_up_no_other(
    core: Core, clock: ManualClock, webhook: HttpReceiver, smtp: SmtpReceiver
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook, smtp=smtp), HOOK_AND_MAIL))
    webhook.fail_next = 1000
    granted(core, MEMBER)
    granted(core, MEMBER2)
    hooks = [r.id for r in notifications(core) if r.channel == "hook"]
    mails = [r.id for r in notifications(core) if r.channel == "mail"]
    first_of_second = next(r.id for r in notifications(core) if r.request_id == 2)
    report = core.new_dispatcher().run_pass()
    assert sorted(report.delivered) == mails  # e-mail went out
    # The failing webhook is probed by the first message, then by one about another
    # request (a failure of one subject alone would not hold the others up) ...
    assert list(report.failed) == [hooks[0], first_of_second]
    assert webhook.hits == 2
    # ... and then taken as failing: the others wait for the retry, untried.
    waiting = [r for r in notifications(core) if r.id in hooks and r.id not in report.failed]
    assert {(r.attempts, r.next_at) for r in waiting} == {(0, clock.now() + timedelta(seconds=5))}
    assert len(smtp.order) == len(mails)
    status = {c.name: c for c in core.outbox.status(ADMIN)}
    assert status["hook"].failing == 2
    assert status["hook"].pending == len(hooks)
    assert status["hook"].last_error == "HTTP 500 Internal Server Error"
    assert status["hook"].last_error_at == clock.now()
    assert not status["hook"].healthy
    assert status["mail"].healthy
    assert status["mail"].delivered == len(mails)

    webhook.fail_next = 0
    clock.advance(timedelta(seconds=5))
    assert sorted(core.new_dispatcher().run_pass().delivered) == hooks  # the probe, then the rest
    assert len(webhook.accepted) == len(hooks)
    assert webhook.duplicates == []
    (hook, _mail) = core.outbox.status(ADMIN)
    assert (hook.healthy, hook.failing, hook.delivered) == (True, 0, len(hooks))
    assert hook.last_error == "HTTP 500 Internal Server Error"  # still shown, with its time


def test_a_message_nobody_could_take_for_a_day_is_given_up(
    core: Core, clock: ManualClock, webhook: HttpReceiver
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook), HOOK_ONLY))
    file(core)
    webhook.fail_next = 1000
    dispatcher = core.new_dispatcher()
    dispatcher.run_pass()
    clock.advance(timedelta(days=1))
    report = dispatcher.run_pass()
    assert report.gave_up == [notifications(core)[0].id]
    assert statuses(core) == {"failed": 1}
    assert dispatcher.next_due() is None
    (status,) = core.outbox.status(ADMIN)
    assert (status.failed, status.pending) == (1, 0)


def test_a_channel_taken_out_of_the_model_gives_its_messages_up(
    core: Core, webhook: HttpReceiver
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook), HOOK_ONLY))
    file(core)
    load(core, with_notifications(channels_yaml(), ""))  # no channels, no routes
    report = core.new_dispatcher().run_pass()
    assert len(report.gave_up) == 1
    assert notifications(core)[0].last_error == "channel hook is no longer in the model"
    (status,) = core.outbox.status(ADMIN)
    assert status.problems == ("not in the model any more",)


def test_a_channel_without_its_secret_fails_and_says_which_variable(
    core: Core, webhook: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook), HOOK_ONLY))
    file(core)
    monkeypatch.delenv(WEBHOOK_KEY_ENV)
    report = core.new_dispatcher().run_pass()
    error = f"environment variable {WEBHOOK_KEY_ENV} (the webhook's signing key) is not set"
    assert list(report.failed.values()) == [error]
    (status,) = core.outbox.status(ADMIN)
    assert status.problems == (
        f"environment variable {WEBHOOK_KEY_ENV} (the signing key) is not set",
    )
    assert webhook.hits == 0


def test_only_admins_see_the_channels(core: Core) -> None:
    with pytest.raises(Forbidden):
        core.outbox.status(MEMBER)


def test_two_dispatchers_never_send_one_message_at_once(core: Core, webhook: HttpReceiver) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook), HOOK_ONLY))
    for _ in range(3):
        approved = granted(core, MEMBER, duration="1h")
        core.grants.release(MEMBER, approved.grant.id)  # type: ignore[union-attr]
    total = len(notifications(core))
    assert total >= 12
    nodes = [core.new_dispatcher(holder=f"node-{n}") for n in range(3)]
    start = threading.Barrier(len(nodes))
    errors: list[BaseException] = []

    def run(dispatcher: Dispatcher) -> None:
        try:
            start.wait()
            dispatcher.run_pass()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert statuses(core) == {"delivered": total}
    assert len(webhook.accepted) == total
    assert webhook.duplicates == []  # leases: not even a duplicate the receiver had to drop
    assert webhook.hits == total


def test_the_loop_in_serve_wakes_on_events_and_retries_when_due(
    core: Core, clock: ManualClock, webhook: HttpReceiver
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook), HOOK_ONLY))

    async def until(predicate: Callable[[], bool], seconds: float = 10) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError("the dispatcher did not act in time")
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        dispatcher = core.new_dispatcher()
        task = asyncio.create_task(dispatcher.run())
        filed = await asyncio.to_thread(file, core)
        await until(lambda: len(webhook.accepted) == 1)  # woken by request.filed; no clock move
        webhook.fail_next = 1
        await asyncio.to_thread(core.workflow.approve, LEADER, filed.id, "ok")
        await until(lambda: webhook.hits == 2)  # the decision notice failed once
        await asyncio.sleep(0.1)
        assert len(webhook.accepted) == 1
        clock.advance(timedelta(seconds=5))  # its retry is due: the loop wakes by itself
        await until(lambda: len(webhook.accepted) >= 3)  # decided + activated
        assert webhook.duplicates == []
        dispatcher.stop()
        await task

    asyncio.run(scenario())


# -- the commands -------------------------------------------------------------------------------


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`sekisho ARGS...` in its own process, as an operator runs it (it configures logging)."""
    return subprocess.run(
        [sys.executable, "-c", "from sekisho.cli.main import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_notify_commands(
    core: Core, webhook: HttpReceiver, smtp: SmtpReceiver, tmp_path: Path
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook, smtp=smtp), HOOK_AND_MAIL))
    file(core)
    env = {
        **os.environ,
        "SEKISHO_DATABASE_URL": core.db.url,
        "SEKISHO_DATA_DIR": str(tmp_path / "cli-data"),
        "COLUMNS": "200",
    }
    dispatched = run_cli(env, "notify", "dispatch", "--json")
    assert dispatched.returncode == 0, dispatched.stderr
    assert len(json.loads(dispatched.stdout)["delivered"]) == 3  # stdout is only the JSON

    tested = run_cli(env, "notify", "test", "hook")
    assert (tested.returncode, tested.stdout) == (0, "channel hook: delivered the test message\n")
    (test,) = webhook.bodies("notify.test")
    assert test["title"] == "sekisho test message for channel hook"
    assert test["url"] == "http://127.0.0.1:8470/"
    assert run_cli(env, "notify", "test", "mail", "--to", "x@y.org").returncode == 0
    assert len(smtp.to("x@y.org")) == 1

    shown = run_cli(env, "notify", "status", "--json")
    assert shown.returncode == 0, shown.stderr
    status = {c["channel"]: c for c in json.loads(shown.stdout)}
    assert (status["hook"]["delivered"], status["mail"]["delivered"]) == (2, 3)
    assert status["hook"]["healthy"] is True

    webhook.fail_next = 1
    failed = run_cli(env, "notify", "test", "hook")
    assert failed.returncode == 1
    assert "HTTP 500" in failed.stderr
    shown = run_cli(env, "notify", "status")
    assert shown.returncode == 1
    assert "hook: last error" in shown.stdout
    assert "HTTP 500 Internal Server Error" in shown.stdout


def test_the_status_api_is_for_admins(core: Core, webhook: HttpReceiver) -> None:
    from fastapi.testclient import TestClient

    from sekisho.server import create_app
    from support import People

    load(core, with_notifications(channels_yaml(webhook=webhook), HOOK_ONLY))
    file(core)
    people = People(core)
    with TestClient(create_app(core)) as client:
        answer = client.get("/api/v1/notifications/status", headers=people.headers("admin01"))
        assert answer.status_code == 200
        (hook,) = answer.json()
        assert (hook["channel"], hook["pending"], hook["type"]) == ("hook", 1, "webhook")
        denied = client.get("/api/v1/notifications/status", headers=people.headers("member01"))
        assert denied.status_code == 403


def test_settings_refuse_a_lease_shorter_than_a_send(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from sekisho.config import Settings

    with pytest.raises(ValidationError, match="notify_lease"):
        Settings(data_dir=tmp_path, notify_lease=timedelta(seconds=10))
