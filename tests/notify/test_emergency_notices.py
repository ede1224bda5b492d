"""Who hears of an emergency: every approver of the template and the `notify` groups, each by
their own e-mail, plus the channels routed for `emergency.used`; an overdue review goes to the
approvers and the admins until someone reviews it."""

from __future__ import annotations

from datetime import timedelta

from notify_support import channels_yaml, file, load, with_notifications
from receivers import HttpReceiver, SmtpReceiver

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from support import EXAMPLE_TEXT, LEADER, example_with_emergency

ROUTES = (
    "    - {events: [emergency.used, emergency.review_overdue, approval.needed], "
    "channels: [hook, mail]}\n"
)


def emergency_model(webhook: HttpReceiver, smtp: SmtpReceiver) -> str:
    routed = with_notifications(channels_yaml(webhook=webhook, smtp=smtp), ROUTES)
    return routed.replace(EXAMPLE_TEXT, example_with_emergency(), 1)


def test_an_emergency_alerts_every_approver_and_the_notify_groups(
    core: Core, webhook: HttpReceiver, smtp: SmtpReceiver
) -> None:
    load(core, emergency_model(webhook, smtp))
    used = file(core, emergency=True, params={"ticket": "INC-42"}, duration="1h")
    core.new_dispatcher().run_pass()
    [alert] = webhook.bodies("emergency.used")
    assert alert["title"] == f"EMERGENCY access #{used.id}: member01 in ProdMemberWorkGroup"
    assert "without an approver (ticket INC-42): fix the payment console" in alert["summary"]
    assert "review is due by 2026-11-30 18:00 JST" in alert["summary"]
    assert "Member One (member01) took emergency access to ProdMemberWorkGroup" in alert["summary"]
    told = {(r["user"], r["role"]) for r in alert["recipients"]}
    assert told == {("leader01", "approver"), ("leader02", "approver"), ("security01", "alerted")}
    assert webhook.bodies("approval.needed") == []  # nobody is asked to decide it
    for leader in ("leader01", "leader02"):
        [mail] = smtp.to(f"{leader}@example.com", "emergency.used")
        assert "You are one of its reviewers" in mail.text
    [security] = smtp.to("security01@example.com", "emergency.used")
    assert "reviewers" not in security.text
    assert smtp.to("member01@example.com") == []


def test_an_overdue_review_goes_to_the_approvers_and_admins_until_done(
    core: Core, clock: ManualClock, webhook: HttpReceiver, smtp: SmtpReceiver
) -> None:
    load(core, emergency_model(webhook, smtp))
    used = file(core, emergency=True, params={"ticket": "INC-42"}, duration="1h")
    clock.advance(timedelta(days=1))
    core.sweeper.run_due()
    core.new_dispatcher().run_pass()
    [overdue] = webhook.bodies("emergency.review_overdue")
    assert (
        overdue["title"] == f"Emergency #{used.id} review overdue: member01 in ProdMemberWorkGroup"
    )
    told = {(r["user"], r["role"]) for r in overdue["recipients"]}
    assert told == {("leader01", "approver"), ("leader02", "approver"), ("admin01", "admin")}
    assert len(smtp.to("admin01@example.com", "emergency.review_overdue")) == 1

    clock.advance(timedelta(days=1))
    core.sweeper.run_due()
    core.new_dispatcher().run_pass()
    assert len(webhook.bodies("emergency.review_overdue")) == 2
    core.workflow.review(LEADER, used.id, "justified: the primary database failed over")
    clock.advance(timedelta(days=1))
    core.sweeper.run_due()
    core.new_dispatcher().run_pass()
    assert len(webhook.bodies("emergency.review_overdue")) == 2
