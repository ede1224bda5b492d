"""The seed's flow with notifications on, through all four channels to real receivers.

member01 asks for production; the approvers hear of it (webhook, Slack, each by mail);
leader01 approves: member01 hears the decision and leader02 that it is handled; the grant
notice, the reminder, the end notice follow; the expiry report goes to SNS and the admin. Then
a revoke the provider fails: the failure report. Each message arrives once, with its link.
"""

from __future__ import annotations

from datetime import timedelta

from notify_support import Topic, channels_yaml, file, load, with_notifications
from receivers import HttpReceiver, MotoServer, SmtpReceiver, sns_event, sns_key

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.providers.memory import MemoryProvider
from support import ADMIN, LEADER, MEMBER2

LINK = "http://127.0.0.1:8470/requests/"


def test_the_seed_flow_with_notifications_on(
    core: Core,
    clock: ManualClock,
    provider: MemoryProvider,
    webhook: HttpReceiver,
    slack: HttpReceiver,
    smtp: SmtpReceiver,
    moto: MotoServer,
    sns: Topic,
) -> None:
    channels = channels_yaml(webhook=webhook, slack=slack, smtp=smtp, sns=sns, moto=moto)
    load(core, with_notifications(channels))
    dispatcher = core.new_dispatcher()

    def deliver() -> None:
        report = dispatcher.run_pass()
        assert report.failed == {}, report.failed

    # 1. member01 files a request: the approvers' notice.
    filed = file(core, duration="1h", reason="Rotate the payment console API key")
    link = f"{LINK}{filed.id}"
    deliver()
    for leader in ("leader01", "leader02"):
        (mail,) = smtp.to(f"{leader}@example.com", "approval.needed")
        assert mail.message["Subject"] == (
            f"Please review request #{filed.id}: member01 in ProdMemberWorkGroup"
        )
        assert "Rotate the payment console API key" in mail.text
        assert f"Review request #{filed.id}: {link}" in mail.text
    assert smtp.to("member01@example.com") == []
    (hook,) = webhook.bodies("approval.needed")
    assert hook["url"] == link
    assert hook["recipients"] == [
        {"user": "leader01", "role": "approver"},
        {"user": "leader02", "role": "approver"},
    ]
    (posted,) = slack.bodies("approval.needed")
    assert posted["blocks"][3]["elements"][0]["url"] == link

    # 2. leader01 approves: the decision notice (and "handled" for leader02), then the grant.
    approved = core.workflow.approve(LEADER, filed.id, "OK, go ahead")
    grant = approved.grant
    assert grant is not None
    deliver()
    (decided,) = smtp.to("member01@example.com", "request.decided")
    assert decided.message["Subject"] == f"Request #{filed.id} approved by leader01"
    assert '"OK, go ahead"' in decided.text
    (handled,) = smtp.to("leader02@example.com", "request.decided")
    assert "nothing for you to do" in handled.message["Subject"]
    assert smtp.to("leader01@example.com", "request.decided") == []  # the decider knows
    (granted_mail,) = smtp.to("member01@example.com", "grant.activated")
    assert granted_mail.message["Subject"].startswith(
        "Access granted: member01 in ProdMemberWorkGroup until "
    )
    assert f"sekisho grant release {grant.id}" in granted_mail.text
    assert [b["event"] for b in webhook.bodies()] == [
        "approval.needed",
        "request.decided",
        "grant.activated",
    ]
    assert [len(slack.bodies(e)) for e in ("approval.needed", "request.decided")] == [1, 1]

    # 3. Fifteen minutes before the end: the reminder, a deadline of the scheduler's sweep.
    assert core.sweeper.next_deadline() == grant.end_at - timedelta(minutes=15)
    clock.set(grant.end_at - timedelta(minutes=15))
    assert core.sweeper.run_due().reminded == [grant.id]
    deliver()
    (reminder,) = smtp.to("member01@example.com", "grant.ending_soon")
    assert reminder.message["Subject"] == "Access ends in 15m: member01 in ProdMemberWorkGroup"

    # 4. The end: the end notice to the holder, the expiry report to SNS and the admin.
    clock.set(grant.end_at)
    assert core.sweeper.run_due().expired == [grant.id]
    deliver()
    (ended,) = smtp.to("member01@example.com", "grant.ended")
    assert ended.message["Subject"] == "Access ended: member01 in ProdMemberWorkGroup (expired)"
    assert link in ended.text
    (report_mail,) = smtp.to("admin01@example.com", "expiry.report")
    assert report_mail.message["Subject"] == "sekisho expiry sweep: 1 ended"
    (published,) = moto.received(sns.queue)
    assert sns_event(published) == "expiry.report"
    assert published["Subject"] == "sekisho expiry sweep: 1 ended"
    assert f"ended: member01 in ProdMemberWorkGroup (grant #{grant.id}" in published["Message"]
    assert link in published["Message"]

    # 5. A revoke the provider does not confirm: the holder's end notice, the failure report.
    other = core.workflow.approve(LEADER, file(core, MEMBER2, duration="1h").id, "ok for member02")
    assert other.grant is not None
    provider.fail("remove_member", times=3)
    revoked = core.grants.revoke(ADMIN, other.grant.id, "suspicious activity")
    assert revoked.status == "ending"  # access is over; the provider has not confirmed
    clock.advance(timedelta(seconds=2))  # the retry's time: the sweep reports the failure
    sweep = core.sweeper.run_due()
    assert list(sweep.still_failing) == [other.grant.id]
    assert sweep.reports == 1
    deliver()
    (revoke_mail,) = smtp.to("member02@example.com", "grant.ended")
    assert "admin01 revoked it: suspicious activity" in revoke_mail.text
    failure_mails = [
        m
        for m in smtp.to("admin01@example.com", "expiry.report")
        if "FAILED" in m.message["Subject"]
    ]
    (failure_mail,) = failure_mails
    assert failure_mail.message["Subject"] == "sekisho expiry sweep: 1 FAILED to end"
    assert "remove_member failed: backend unavailable (injected)" in failure_mail.text
    assert f"{LINK}{other.id}" in failure_mail.text
    (failure,) = moto.received(sns.queue)
    assert failure["Subject"] == "sekisho expiry sweep: 1 FAILED to end"
    assert "FAILED: member02 in ProdMemberWorkGroup" in failure["Message"]
    assert sns_key(failure) != sns_key(published)

    # Each message arrived once at each receiver, every one with its link.
    for receiver in (webhook, slack):
        assert receiver.duplicates == []
        assert receiver.rejected == []
    assert smtp.duplicates == []
    assert all(b["url"].startswith(LINK) for b in webhook.bodies())
    assert all(LINK in smtp.mails[k].text for k in smtp.order)
    assert dispatcher.run_pass().delivered == []
    status = {c.name: c for c in core.outbox.status(ADMIN)}
    assert {name: c.pending for name, c in status.items()} == {
        "hook": 0,
        "team": 0,
        "mail": 0,
        "reports": 0,
    }
    assert status["reports"].delivered == 2
