"""Messages about one request (and its grant) reach each recipient in the order they were
written, whatever fails or crashes in between; a subject that cannot be delivered holds up
nothing else. At real receivers (a signed webhook, SMTP with a personal mail per person), with
the real dispatcher, and a real `sekisho notify dispatch` process killed mid-delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from notify_support import channels_yaml, dispatch_process, file, load, with_notifications
from receivers import HttpReceiver, SmtpReceiver
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.store.tables import NotificationRow
from support import ADMIN, LEADER, MEMBER, MEMBER2

EVERYWHERE = "    - {events: ['*'], channels: [hook, mail]}\n"
HOLDER, REQUESTER = "member01@example.com", "admin01@example.com"  # admin01 files for member01


@pytest.fixture
def clock() -> ManualClock:
    # A killed `notify dispatch` process runs on the wall clock: this one starts there too.
    return ManualClock(datetime.now(UTC) - timedelta(minutes=1))


def rows(core: Core) -> dict[str, NotificationRow]:
    """Every message in the outbox, by delivery key."""
    with core.db.read() as s:
        found = s.scalars(select(NotificationRow).order_by(NotificationRow.id))
        return {r.key: r for r in found}


def arrived(core: Core, keys: list[str], request_id: int) -> list[str]:
    """The events of one request, in the order a receiver took them."""
    written = rows(core)
    return [written[k].event for k in keys if written[k].request_id == request_id]


def at_the_hook(webhook: HttpReceiver) -> list[str]:
    with webhook.lock:
        return list(webhook.order)


def mailed_to(smtp: SmtpReceiver, address: str) -> list[str]:
    return [m.key for m in smtp.to(address)]


def for_member01(core: Core) -> tuple[int, int]:
    """admin01 files for member01; leader01 approves: (request, grant)."""
    filed = file(core, ADMIN, user="member01", duration="1h")
    approved = core.workflow.approve(LEADER, filed.id, "ok")
    assert approved.grant is not None
    return filed.id, approved.grant.id


def test_a_receiver_that_fails_the_activation_gets_it_before_the_end_and_nothing_else_waits(
    core: Core, clock: ManualClock, webhook: HttpReceiver, smtp: SmtpReceiver
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook, smtp=smtp), EVERYWHERE))
    first, grant = for_member01(core)
    other = file(core, MEMBER2).id  # unrelated: member02's own request

    def about_activation(body: dict[str, Any]) -> bool:
        return body["event"] == "grant.activated" and body["request_id"] == first

    def mail_about_activation(mail: EmailMessage) -> bool:
        return mail["X-Sekisho-Event"] == "grant.activated"

    webhook.refuse, smtp.refuse = about_activation, mail_about_activation
    dispatcher = core.new_dispatcher()
    report = dispatcher.run_pass()
    activations = {k for k, r in rows(core).items() if r.event == "grant.activated"}
    assert set(report.failed) == {rows(core)[k].id for k in activations}  # hook + 2 mails
    # Unrelated messages went out: member02's request reached the hook and both approvers.
    assert arrived(core, at_the_hook(webhook), other) == ["approval.needed"]
    for approver in ("leader01@example.com", "leader02@example.com"):
        assert arrived(core, mailed_to(smtp, approver), other) == ["approval.needed"]

    # The grant ends while its activation is still failing; the end is due at once ...
    core.grants.release(MEMBER, grant)
    core.workflow.approve(LEADER, other, "ok")  # ... and so is more about member02's request
    report = dispatcher.run_pass()
    ended = {rows(core)[k].id for k, r in rows(core).items() if r.event == "grant.ended"}
    assert not ended & set(report.delivered)  # held back behind the failing activation
    assert arrived(core, at_the_hook(webhook), other) == [
        "approval.needed",
        "request.decided",
        "grant.activated",
    ]  # not held up by member01's failing one

    webhook.refuse = smtp.refuse = None
    clock.advance(timedelta(seconds=5))  # the activation's retry
    dispatcher.run_pass()
    assert {r.status for r in rows(core).values()} == {"delivered"}
    tail = ["grant.activated", "grant.ended"]
    assert arrived(core, at_the_hook(webhook), first)[-2:] == tail
    for person in (HOLDER, REQUESTER):  # every recipient, in order
        assert arrived(core, mailed_to(smtp, person), first) == ["request.decided", *tail]
    assert webhook.duplicates == smtp.duplicates == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_dispatcher_killed_before_the_activation_went_out_never_lets_the_end_overtake_it(
    core: Core, clock: ManualClock, webhook: HttpReceiver, smtp: SmtpReceiver, tmp_path: Path
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook, smtp=smtp), EVERYWHERE))
    filed = file(core, ADMIN, user="member01", duration="1h")
    assert core.new_dispatcher().run_pass().failed == {}  # the approvers heard of it
    # Something earlier in each channel's next batch, for the receivers to hold on to.
    core.outbox.test("hook")
    core.outbox.test("mail", ["ops@example.com"])
    approved = core.workflow.approve(LEADER, filed.id, "ok")  # decided + activated, queued
    assert approved.grant is not None
    webhook.hold_at = len(webhook.order) + 1
    smtp.hold_at = len(smtp.order) + 1

    process = dispatch_process(core, tmp_path / "dispatcher")
    try:
        assert webhook.held.wait(60), "the dispatcher never reached the held webhook"
        assert smtp.held.wait(60), "the dispatcher never reached the held mail"
    finally:
        process.kill()  # mid-delivery: both batches claimed, their first message unanswered
        _, errors = process.communicate(timeout=30)
    webhook.release.set()
    smtp.release.set()
    assert process.returncode == -9, errors.decode()

    # The grant ends, and member02 files: both written while the dead one's lease holds.
    core.grants.release(MEMBER, approved.grant.id)
    other = file(core, MEMBER2).id
    restarted = core.new_dispatcher()
    early = restarted.run_pass()
    assert arrived(core, at_the_hook(webhook), other) == ["approval.needed"]  # not held up
    assert arrived(core, mailed_to(smtp, "leader02@example.com"), other) == ["approval.needed"]
    ended = {r.id for r in rows(core).values() if r.event == "grant.ended"}
    assert not ended & set(early.delivered)  # the activation has not gone out yet

    clock.advance(timedelta(minutes=5))  # past the dead one's lease (2 minutes)
    restarted.run_pass()
    assert {r.status for r in rows(core).values()} == {"delivered"}
    in_order = ["request.decided", "grant.activated", "grant.ended"]
    assert arrived(core, at_the_hook(webhook), filed.id)[-3:] == in_order
    for person in (HOLDER, REQUESTER):  # every recipient
        assert arrived(core, mailed_to(smtp, person), filed.id) == in_order
