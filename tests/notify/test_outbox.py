"""The outbox: who is told what, written in the same transaction as the change.

Nothing here sends: the channels point at a closed port, and the rows are what is checked.
Delivery is test_dispatch.py's; the real receivers are test_channels.py's and
test_seed_flow.py's.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from notify_support import file, granted, load, remove_draft, with_notifications
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.actor import Actor
from sekisho.domain.errors import InvalidInput, NotFound
from sekisho.domain.extensions import ExtensionDraft
from sekisho.domain.grants import GrantStatus
from sekisho.notify.reports import SCHEDULER, report_worthy
from sekisho.providers.memory import MemoryProvider
from sekisho.store.grants import ending_grant
from sekisho.store.tables import GrantRow, NotificationRow, ReminderRow, ReportLineRow
from support import ADMIN, EXAMPLE_TEXT, LEADER, LEADER2, MEMBER, MEMBER2, draft

CLOSED = """\
    - {name: hook, type: webhook, url: "http://127.0.0.1:9/hook", secret_env: NO_SUCH_KEY}
    - {name: mail, type: email, host: 127.0.0.1, port: 9, sender: sekisho@example.com}
"""
EVERYTHING = "    - {events: ['*'], channels: [hook, mail]}\n"
LINK = "http://127.0.0.1:8470/requests/"
WORK = "ProdMemberWorkGroup"


def rows(core: Core, event: str | None = None, channel: str | None = None) -> list[NotificationRow]:
    with core.db.read() as s:
        stmt = select(NotificationRow).order_by(NotificationRow.id)
        if event is not None:
            stmt = stmt.where(NotificationRow.event == event)
        if channel is not None:
            stmt = stmt.where(NotificationRow.channel == channel)
        return list(s.scalars(stmt))


def mailed(core: Core, event: str) -> dict[str, dict[str, Any]]:
    """The personal mails of `event`: address -> message."""
    return {r.recipient or "": r.message for r in rows(core, event, "mail")}


def broadcast(core: Core, event: str) -> list[dict[str, Any]]:
    return [r.message for r in rows(core, event, "hook")]


def count(core: Core, table: Any) -> int:
    with core.db.read() as s:
        return s.scalar(select(func.count()).select_from(table)) or 0


@pytest.fixture
def routed(core: Core) -> Core:
    load(core, with_notifications(CLOSED, EVERYTHING))
    return core


# -- nothing configured, nothing written ------------------------------------------------------


def test_without_a_notifications_section_nothing_is_written(core: Core, clock: ManualClock) -> None:
    approved = granted(core, duration="1h")
    core.grants.release(MEMBER, approved.grant.id)  # type: ignore[union-attr]
    file(core, MEMBER2)
    clock.advance(timedelta(days=4))
    core.sweeper.run_due()
    assert count(core, NotificationRow) == 0
    assert count(core, ReminderRow) == 0
    assert count(core, ReportLineRow) == 0


# -- requests ----------------------------------------------------------------------------------


def test_a_new_request_asks_the_approvers_of_its_first_level(routed: Core) -> None:
    filed = file(routed)
    mails = mailed(routed, "approval.needed")
    assert set(mails) == {"leader01@example.com", "leader02@example.com"}  # not member01
    mail = mails["leader01@example.com"]
    assert mail["role"] == "approver"
    assert mail["title"] == f"Please review request #{filed.id}: member01 in ProdMemberWorkGroup"
    assert mail["link"] == f"{LINK}{filed.id}"
    facts = dict(mail["facts"])
    assert facts["Reason"] == "fix the payment console"
    assert facts["Rollback plan"] == "restore the previous key"
    (hook,) = broadcast(routed, "approval.needed")
    assert hook["recipients"] == [["leader01", "approver"], ["leader02", "approver"]]
    assert hook["link"] == f"{LINK}{filed.id}"
    assert "Member One (member01) asks to join ProdMemberWorkGroup" in hook["summary"]


def test_a_refused_request_writes_no_notification(routed: Core) -> None:
    with pytest.raises(InvalidInput):
        routed.workflow.file(MEMBER, draft(template="NoSuchTemplate"))
    assert rows(routed) == []


@contextmanager
def grants_cannot_be_written(core: Core) -> Iterator[None]:
    """The database refuses every new grant (a trigger raises): a real failure, mid-transaction."""
    if core.db.is_postgres:
        create = [
            "CREATE FUNCTION refuse_grant() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{WENT_AWAY}'; END $$",
            "CREATE TRIGGER refuse_grant BEFORE INSERT ON grants "
            "FOR EACH ROW EXECUTE FUNCTION refuse_grant()",
        ]
        drop = ["DROP TRIGGER refuse_grant ON grants", "DROP FUNCTION refuse_grant()"]
    else:
        create = [
            "CREATE TRIGGER refuse_grant BEFORE INSERT ON grants "
            f"BEGIN SELECT RAISE(ABORT, '{WENT_AWAY}'); END"
        ]
        drop = ["DROP TRIGGER refuse_grant"]
    with core.db.write() as s:
        for statement in create:
            s.execute(text(statement))
    try:
        yield
    finally:
        with core.db.write() as s:
            for statement in drop:
                s.execute(text(statement))


WENT_AWAY = "the database went away mid-transaction"


def test_a_decision_that_rolls_back_takes_its_notifications_with_it(routed: Core) -> None:
    filed = file(routed)
    before = len(rows(routed))
    # The claim (which adds the grant) runs after the decision's audit entry and its
    # notifications, in one transaction.
    with grants_cannot_be_written(routed), pytest.raises(DBAPIError, match=WENT_AWAY):
        routed.workflow.approve(LEADER, filed.id, "ok")
    assert len(rows(routed)) == before
    assert routed.workflow.get(LEADER, filed.id).status == "pending_approval"


def test_an_approval_tells_the_requester_and_the_other_approvers(routed: Core) -> None:
    filed = file(routed)
    routed.workflow.approve(LEADER, filed.id, "OK, go ahead")
    mails = mailed(routed, "request.decided")
    assert set(mails) == {"member01@example.com", "leader02@example.com"}
    mine = mails["member01@example.com"]
    assert mine["role"] == "requester"
    assert mine["title"] == f"Request #{filed.id} approved by leader01"
    assert '"OK, go ahead"' in mine["summary"]
    other = mails["leader02@example.com"]
    assert other["role"] == "handled"
    assert "nothing for you to do" in other["title"]
    (hook,) = broadcast(routed, "request.decided")
    assert hook["data"]["decision"] == "approved"
    assert hook["data"]["decided_by"] == "leader01"


def test_a_rejection_closes_the_request_for_everyone(routed: Core) -> None:
    filed = file(routed)
    routed.workflow.reject(LEADER2, filed.id, "not during the freeze")
    mails = mailed(routed, "request.decided")
    assert mails["member01@example.com"]["title"] == f"Request #{filed.id} rejected by leader02"
    assert "not during the freeze" in mails["member01@example.com"]["summary"]
    assert mails["leader01@example.com"]["role"] == "handled"


TWO_LEVELS = EXAMPLE_TEXT.replace(
    """    approval:
      - approvers: ChangeApprovalGroup
        min_approvals: 1
    max_duration: 8h""",
    """    approval:
      - approvers: ChangeApprovalGroup
      - approvers: SecurityApprovalGroup
        min_approvals: MIN
    max_duration: 8h""",
).replace(
    """  - name: AuditGroup""",
    """  - name: SecurityApprovalGroup
    kind: standing
    members: [admin01, auditor01]
    permissions:
      approve: [AddUserToGroup]

  - name: AuditGroup""",
)


def two_levels(core: Core, min_approvals: int) -> None:
    text = TWO_LEVELS.replace("MIN", str(min_approvals))
    assert text != EXAMPLE_TEXT
    core.models.load(
        text + "\nnotifications:\n  channels:\n" + CLOSED + "  routes:\n" + EVERYTHING,
        "two.yaml",
        Actor.system("test"),
    )


def test_a_completed_level_asks_the_next_level_s_approvers(core: Core) -> None:
    two_levels(core, 1)
    filed = file(core)
    assert set(mailed(core, "approval.needed")) == {
        "leader01@example.com",
        "leader02@example.com",
    }
    core.workflow.approve(LEADER, filed.id, "fine by me")
    decided = mailed(core, "request.decided")
    assert "level 1 approved by leader01" in decided["member01@example.com"]["title"]
    assert decided["leader02@example.com"]["role"] == "handled"
    asked = [r for r in rows(core, "approval.needed", "mail") if "level 2" in r.message["summary"]]
    assert {r.recipient for r in asked} == {"admin01@example.com", "auditor01@example.com"}


def test_a_partial_approval_tells_the_requester_and_leaves_the_others_asked(core: Core) -> None:
    two_levels(core, 2)
    filed = file(core)
    core.workflow.approve(LEADER, filed.id, "level 1")
    core.workflow.approve(ADMIN, filed.id, "one of two")
    partial = [r for r in rows(core, "request.decided", "mail") if "admin01" in r.message["title"]]
    assert [r.recipient for r in partial] == ["member01@example.com"]  # auditor01 still asked
    assert "admin01 approved (1 of 2 at level 2 of 2)" in partial[0].message["title"]


def test_a_cancellation_tells_the_waiting_approvers(routed: Core) -> None:
    filed = file(routed)
    routed.workflow.cancel(MEMBER, filed.id)
    mails = mailed(routed, "request.decided")
    assert set(mails) == {"leader01@example.com", "leader02@example.com"}
    assert mails["leader01@example.com"]["title"] == (
        f"Request #{filed.id} was cancelled by member01"
    )


def test_a_request_nobody_decided_tells_its_requester_and_approvers(
    routed: Core, clock: ManualClock
) -> None:
    filed = file(routed)
    clock.advance(timedelta(days=3, seconds=1))
    assert routed.sweeper.run_due().requests_expired == [filed.id]
    mails = mailed(routed, "request.decided")
    assert mails["member01@example.com"]["role"] == "requester"
    assert "expired" in mails["member01@example.com"]["title"]
    assert mails["leader01@example.com"]["role"] == "handled"


def test_routes_can_be_limited_to_templates(core: Core) -> None:
    only_removals = "    - {events: ['*'], templates: [RemoveUserFromGroup], channels: [hook]}\n"
    load(core, with_notifications(CLOSED, only_removals))
    approved = granted(core)
    assert rows(core) == []
    core.workflow.file(MEMBER, remove_draft())
    assert [r.event for r in rows(core)] == ["approval.needed"]
    assert approved.grant is not None


# -- the runbook and the grant -------------------------------------------------------------------


def test_activation_tells_the_holder_and_schedules_the_reminder(routed: Core) -> None:
    approved = granted(routed, duration="2h")
    assert approved.grant is not None
    mail = mailed(routed, "grant.activated")["member01@example.com"]
    assert mail["role"] == "holder"
    assert mail["grant_id"] == approved.grant.id
    assert mail["link"] == f"{LINK}{approved.id}"
    facts = dict(mail["facts"])
    assert facts["May assume"] == "prod/Prod_MemberRole"
    with routed.db.read() as s:
        reminder = s.get_one(ReminderRow, approved.grant.id)
    assert reminder.due_at == approved.grant.end_at - timedelta(minutes=15)


def test_an_imported_seed_grant_tells_the_holder_and_schedules_the_reminder(
    routed: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    """The reconciler's import is an activation like any other (it wrote neither before)."""
    provider.add_member("member01", WORK)
    tokyo_in_two_hours = clock.now().astimezone(ZoneInfo("Asia/Tokyo")) + timedelta(hours=2)
    provider.set_tag("member01", WORK, tokyo_in_two_hours.strftime("%Y%m%d%H%M"))
    routed.reconciler.run()
    with routed.db.read() as s:
        grant = s.scalars(select(GrantRow)).one()
        reminder = s.get_one(ReminderRow, grant.id)
    assert reminder.due_at == grant.end_at - timedelta(minutes=15)
    mail = mailed(routed, "grant.activated")["member01@example.com"]
    assert (mail["role"], mail["grant_id"]) == ("holder", grant.id)


def test_the_reminder_is_a_deadline_the_sweep_keeps_once(routed: Core, clock: ManualClock) -> None:
    approved = granted(routed, duration="2h")
    assert approved.grant is not None
    due = approved.grant.end_at - timedelta(minutes=15)
    assert routed.sweeper.next_deadline() == due
    clock.set(due - timedelta(seconds=1))
    assert routed.sweeper.run_due().reminded == []
    clock.set(due)
    assert routed.sweeper.run_due().reminded == [approved.grant.id]
    assert routed.sweeper.run_due().reminded == []
    (mail,) = mailed(routed, "grant.ending_soon").values()
    assert mail["title"] == "Access ends in 15m: member01 in ProdMemberWorkGroup"
    assert routed.sweeper.next_deadline() == approved.grant.end_at


def test_the_sweep_s_reminders_and_report_wake_the_dispatcher_once_each(
    routed: Core, clock: ManualClock
) -> None:
    approved = granted(routed, duration="1h")
    assert approved.grant is not None
    heard: list[str] = []
    routed.bus.subscribe(lambda event: heard.append(event.name))
    clock.set(approved.grant.end_at - timedelta(minutes=15))
    assert routed.sweeper.run_due().reminded == [approved.grant.id]
    assert heard == ["notify.queued"]
    heard.clear()
    clock.set(approved.grant.end_at)
    assert routed.sweeper.run_due().reports == 1
    assert heard.count("notify.queued") == 1


def test_an_extension_asks_the_approvers_and_moves_the_reminder(
    routed: Core, clock: ManualClock
) -> None:
    approved = granted(routed, duration="2h")
    assert approved.grant is not None
    grant_id, old_end = approved.grant.id, approved.grant.end_at
    clock.set(old_end - timedelta(minutes=10))  # after the first reminder went out
    assert routed.sweeper.run_due().reminded == [grant_id]
    asked = routed.workflow.extend(MEMBER, grant_id, ExtensionDraft("overran", duration="1h"))
    mails = mailed(routed, "approval.needed")
    assert set(mails) == {"leader01@example.com", "leader02@example.com"}
    (hook,) = [
        h for h in broadcast(routed, "approval.needed") if h["link"].endswith(f"/{asked.id}")
    ]
    assert f"asks for more time on grant #{grant_id} in ProdMemberWorkGroup" in hook["summary"]
    routed.workflow.approve(LEADER, asked.id, "ok")
    told = mailed(routed, "request.decided")["member01@example.com"]
    assert "approved" in told["summary"]
    new_end = old_end + timedelta(hours=1)
    with routed.db.read() as s:
        assert s.get_one(ReminderRow, grant_id).due_at == new_end - timedelta(minutes=15)
    assert routed.sweeper.next_deadline() == new_end - timedelta(minutes=15)


def test_a_self_service_extension_asks_nobody(routed: Core) -> None:
    load(
        routed,
        with_notifications(CLOSED, EVERYTHING).replace(
            "    max_duration: 8h              # the longest a single request may grant\n",
            "    max_duration: 8h              # the longest a single request may grant\n"
            "    extend: {times: 1, total: 1h}\n",
        ),
    )
    approved = granted(routed, duration="2h")
    assert approved.grant is not None
    before = len(rows(routed, "approval.needed"))
    done = routed.workflow.extend(MEMBER, approved.grant.id, ExtensionDraft("more", duration="30m"))
    assert done.status == "succeeded"
    assert len(rows(routed, "approval.needed")) == before


def test_a_grant_shorter_than_the_lead_time_gets_no_reminder(routed: Core) -> None:
    granted(routed, duration="10m")
    assert count(routed, ReminderRow) == 0


def test_an_early_end_tells_the_holder_and_drops_the_reminder(routed: Core) -> None:
    approved = granted(routed, duration="2h")
    assert approved.grant is not None
    routed.grants.revoke(ADMIN, approved.grant.id, "incident closed")
    assert count(routed, ReminderRow) == 0
    mail = mailed(routed, "grant.ended")["member01@example.com"]
    assert mail["title"] == "Access ended: member01 in ProdMemberWorkGroup (revoked)"
    assert "admin01 revoked it: incident closed" in mail["summary"]
    assert rows(routed, "expiry.report") == []  # a confirmed revoke is no report's business


def test_a_failed_runbook_and_a_removal_tell_their_holder(
    routed: Core, provider: MemoryProvider
) -> None:
    provider.fail("set_tag")
    failed = granted(routed)
    assert failed.status == "failed"
    mail = mailed(routed, "runbook.finished")["member01@example.com"]
    assert mail["title"] == f"Request #{failed.id} failed: no access was granted"
    assert "set_tag failed" in mail["summary"]
    assert rows(routed, "grant.ended") == []  # it never was access

    approved = granted(routed, MEMBER2)
    removal = routed.workflow.file(MEMBER2, remove_draft())
    routed.workflow.approve(LEADER, removal.id, "ok")
    done = [r for r in rows(routed, "runbook.finished", "mail") if r.request_id == removal.id]
    assert [r.recipient for r in done] == ["member02@example.com"]
    assert done[0].message["title"] == (
        f"Request #{removal.id} done: member02 removed from ProdMemberWorkGroup"
    )
    ended = [r for r in rows(routed, "grant.ended", "mail") if r.request_id == approved.id]
    assert "(removed)" in ended[0].message["title"]


# -- reports ------------------------------------------------------------------------------------


def test_the_sweep_sends_one_report_for_everything_it_ended(
    routed: Core, clock: ManualClock
) -> None:
    first = granted(routed, MEMBER, duration="1h")
    second = granted(routed, MEMBER2, duration="1h")
    clock.advance(timedelta(hours=1))
    report = routed.sweeper.run_due()
    assert sorted(report.expired) == sorted([first.grant.id, second.grant.id])  # type: ignore[union-attr]
    assert report.reports == 1
    (mail,) = mailed(routed, "expiry.report").values()
    assert mail["title"] == "sekisho expiry sweep: 2 ended"
    assert len(mail["lines"]) == 2
    assert all(line.startswith("ended: member0") for line in mail["lines"])
    assert set(mailed(routed, "expiry.report")) == {"admin01@example.com"}
    assert {r.recipient for r in rows(routed, "grant.ended", "mail")} == {
        "member01@example.com",
        "member02@example.com",
    }
    assert routed.sweeper.run_due().reports == 0  # every line is in a report once


def test_a_failed_removal_is_reported_at_once_then_less_often(
    routed: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    approved = granted(routed, duration="2h")
    grant_id = approved.grant.id  # type: ignore[union-attr]
    provider.fail("remove_member", times=4)
    routed.grants.revoke(ADMIN, grant_id, "suspicious activity")
    assert rows(routed, "expiry.report") == []  # the line waits for the sweep's report
    reports = []
    for _ in range(5):  # attempts 2..6: the 4th fails, the 5th confirms
        clock.advance(timedelta(minutes=10))
        routed.sweeper.run_due()
        reports.append([r.message for r in rows(routed, "expiry.report", "mail")])
    titles = [m["title"] for m in reports[-1]]
    assert titles == [
        "sekisho expiry sweep: 1 FAILED to end",  # attempt 1 (the revoke), in the next pass
        "sekisho expiry sweep: 1 FAILED to end",  # attempt 4
        "sekisho expiry sweep: 1 ended",  # attempt 5: confirmed
    ]
    assert "attempt 1: remove_user_from_group: remove_member failed" in reports[-1][0]["lines"][0]
    assert "attempt 4" in reports[-1][1]["lines"][0]
    assert reports[-1][2]["lines"][0].startswith("recovered: member01")
    assert "removed after 5 attempts" in reports[-1][2]["lines"][0]
    assert reports[-1][0]["link"] == f"{LINK}{approved.id}"
    assert grant_status(routed, grant_id) == GrantStatus.REVOKED


def grant_status(core: Core, grant_id: int) -> str:
    with core.db.read() as s:
        return s.get_one(GrantRow, grant_id).status


def test_report_worthy_attempts() -> None:
    assert [n for n in range(1, 70) if report_worthy(n)] == [1, 4, 16, 64]


def test_lines_a_dead_pass_left_are_gathered_by_the_dispatcher(
    routed: Core, clock: ManualClock
) -> None:
    approved = granted(routed, duration="1h")
    with routed.db.write() as s:  # a sweep that died after its ending, before its report
        grant = ending_grant(s.get_one(GrantRow, approved.grant.id))  # type: ignore[union-attr]
        routed.outbox.ending_outcome(s, grant, SCHEDULER, confirmed=True)
    with routed.db.read() as s:
        assert routed.outbox.next_orphan(s) == clock.now() + timedelta(minutes=1)
    clock.advance(timedelta(seconds=59))
    assert routed.outbox.compose_reports(timedelta(minutes=1)) == 0
    clock.advance(timedelta(seconds=1))
    assert routed.outbox.compose_reports(timedelta(minutes=1)) == 1
    assert len(rows(routed, "expiry.report")) == 2  # hook + admin01's mail


def test_the_reconciler_reports_what_it_fixed_and_failed_to(
    routed: Core, provider: MemoryProvider
) -> None:
    provider.add_member("member01", "ProdLeaderWorkGroup")  # by hand: nobody holds a grant
    provider.add_member("member02", "ProdMemberWorkGroup")
    provider.fail("remove_member")  # the first removal is not confirmed
    report = routed.reconciler.run()
    assert (len(report.done), len(report.failed)) == (1, 1)
    (mail,) = mailed(routed, "reconcile.report").values()
    assert mail["title"] == "sekisho reconciler: 1 FAILED, 1 fixed"
    assert mail["lines"][0].startswith("FAILED: member01 in ProdLeaderWorkGroup (no grant)")
    assert "remove_member failed" in mail["lines"][0]
    assert mail["lines"][1].startswith("fixed: member02 in ProdMemberWorkGroup (no grant)")
    assert mail["link"] == "http://127.0.0.1:8470/"
    assert routed.reconciler.run().failed == []  # the second run fixes the rest ...
    titles = [r.message["title"] for r in rows(routed, "reconcile.report", "mail")]
    assert titles[-1] == "sekisho reconciler: 1 fixed"  # ... and says so, once


# -- never the network, never a secret -----------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_writing_the_outbox_never_touches_the_network(
    routed: Core, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a service called the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    approved = granted(routed, duration="1h")
    clock.advance(timedelta(hours=1))
    routed.sweeper.run_due()
    assert approved.status == "succeeded"
    assert {r.status for r in rows(routed)} == {"pending"}
    assert len(rows(routed)) >= 10


def test_the_test_message_needs_a_known_channel(routed: Core) -> None:
    with pytest.raises(NotFound, match="channels: hook, mail"):
        routed.outbox.test("nope")
    ids = routed.outbox.test("mail")
    assert [r.recipient for r in rows(routed) if r.id in ids] == ["admin01@example.com"]


def test_a_test_address_that_could_smuggle_a_header_or_a_recipient_is_refused(
    routed: Core,
) -> None:
    before = len(rows(routed))
    smuggled = ("a@example.com\r\nBcc: x@evil.example", "a@example.com, x@evil.example")
    for address in (*smuggled, "nobody"):
        with pytest.raises(InvalidInput) as refused:
            routed.outbox.test("mail", [address])
        assert refused.value.problems[0].rule == "email_format"
    assert len(rows(routed)) == before  # nothing queued
