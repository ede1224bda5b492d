"""Extensions: more time on an active grant, asked as a request linked to it, with no moment
without access; a refused one leaves the grant as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from flows import (
    WORK,
    actions,
    at_once,
    audit_rows,
    can_assume,
    grant_row,
    granted,
    invalid,
    kinds,
    load_model,
    refused,
)

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Conflict, Locked, NotFound, SelfApproval
from sekisho.domain.extensions import ExtensionDraft
from sekisho.domain.grants import EndReason, GrantStatus
from sekisho.domain.timespec import iso
from sekisho.providers.memory import MemoryProvider
from sekisho.services.sweeper import SWEEPER
from sekisho.services.views import RequestView
from sekisho.store import grants
from sekisho.store.db import Database
from support import (
    ADMIN,
    LEADER,
    LEADER2,
    MEMBER,
    MEMBER2,
    assemble_core,
    draft,
    example_with_extend,
)

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
END = NOW + timedelta(hours=2)  # the grant's end: granted for 2h at NOW
SECURITY = Actor("security01", "198.51.100.13")


def active_grant(core: Core, actor: Actor = MEMBER, approver: Actor = LEADER) -> int:
    done = granted(core, actor, approver)
    assert done.grant is not None
    return done.grant.id


def extend(
    core: Core,
    grant_id: int,
    actor: Actor = MEMBER,
    *,
    duration: str | None = "1h",
    until: str | None = None,
    reason: str = "the rotation needs another hour",
) -> RequestView:
    draft = ExtensionDraft(reason=reason, until=until, duration=duration)
    return core.workflow.extend(actor, grant_id, draft)


def messages(view: RequestView) -> list[str]:
    return [t.message for t in view.timeline]


# -- the approved extension -------------------------------------------------------------------


def test_an_approved_extension_moves_the_end_with_no_moment_without_access(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    grant_id = active_grant(core)
    clock.advance(timedelta(hours=1))
    asked = extend(core, grant_id)
    assert (asked.status, asked.extends_grant_id, asked.end_at) == (
        "pending_approval",
        grant_id,
        END + timedelta(hours=1),
    )
    assert asked.template == "AddUserToGroup"
    assert asked.decide_by == END  # nothing is left to extend after the current end
    assert asked.change_info == core.workflow.get(MEMBER, 1).change_info  # the same change
    assert grant_row(core, grant_id).end_at == END  # asking changes nothing yet

    done = core.workflow.approve(LEADER, asked.id, "one more hour is fine")
    assert done.status == "succeeded"
    grant = grant_row(core, grant_id)
    assert (grant.status, grant.end_at, grant.start_at) == ("active", END + timedelta(hours=1), NOW)
    assert kinds(done)[-3:] == ["grant.extended", "step:add_user_to_group", "step:tag_user"]
    moved = f"ends at {iso(END + timedelta(hours=1))} instead of {iso(END)}"
    assert f"grant #{grant_id} extended: {moved}" in messages(done)
    own = core.workflow.get(MEMBER, 1)  # the grant's own request tells it too
    assert f"extended by request #{asked.id}: {moved}" in messages(own)
    assert own.grant is not None
    assert own.grant.end_at == END + timedelta(hours=1)
    # The provider's TTL tag is written again with the new end, through the normal path.
    assert provider.tags("member01") == {WORK: iso(END + timedelta(hours=1))}
    entry = next(r for r in audit_rows(core) if r.action == "grant.extended")
    assert (entry.grant_id, entry.request_id, entry.subject) == (grant_id, 1, "member01")
    assert (entry.detail["old_end"], entry.detail["end"]) == (
        iso(END),
        iso(END + timedelta(hours=1)),
    )
    assert entry.detail["extension"] == asked.id
    assert actions(core, asked.id) == ["request.filed", "request.approved"]

    clock.set(END)  # the old end: nothing is due, access holds
    assert not core.sweeper.run_due().expired
    assert can_assume(core)
    assert provider.members(WORK) == frozenset({"member01"})
    assert core.sweeper.next_deadline() == END + timedelta(hours=1)
    clock.set(END + timedelta(hours=1))  # the new end: the grant ends as any grant does
    assert core.sweeper.run_due().expired == [grant_id]
    assert not can_assume(core)
    assert provider.members(WORK) == frozenset()


def test_until_sets_the_new_end_in_the_model_s_time_zone(core: Core) -> None:
    grant_id = active_grant(core)
    asked = extend(core, grant_id, duration=None, until="2026-11-29T20:30+09:00")
    assert asked.end_at == datetime(2026, 11, 29, 11, 30, tzinfo=UTC)
    assert asked.reason == "the rotation needs another hour"


def test_a_rejected_extension_leaves_the_grant_as_it_was(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    grant_id = active_grant(core)
    tag = provider.tags("member01")
    asked = extend(core, grant_id)
    rejected = core.workflow.reject(LEADER, asked.id, "finish tomorrow")
    assert rejected.status == "rejected"
    assert grant_row(core, grant_id).end_at == END
    assert provider.tags("member01") == tag
    clock.set(END)
    assert core.sweeper.run_due().expired == [grant_id]


def test_the_holder_never_approves_their_own_extension(core: Core) -> None:
    grant_id = active_grant(core, LEADER, LEADER2)  # leader01 holds it
    asked = extend(core, grant_id, LEADER)
    with refused(core, SelfApproval):
        core.workflow.approve(LEADER, asked.id)
    assert core.workflow.approve(LEADER2, asked.id).status == "succeeded"


def test_an_admin_may_ask_for_someone_and_then_may_not_approve_it(core: Core) -> None:
    grant_id = active_grant(core)
    asked = extend(core, grant_id, ADMIN)
    assert (asked.requester, asked.user) == ("admin01", "member01")
    with refused(core, SelfApproval):
        core.workflow.approve(ADMIN, asked.id)


# -- self-service -----------------------------------------------------------------------------


def test_self_service_extensions_need_nobody_up_to_times_and_total(core: Core) -> None:
    load_model(core, example_with_extend("{times: 2, total: 1h}"))
    grant_id = active_grant(core)
    first = extend(core, grant_id, duration="30m")
    assert first.status == "succeeded"
    assert "self-service extension 1 of 2 (30m of 1h added)" in messages(first)
    assert [d.approver for d in first.decisions] == []
    second = extend(core, grant_id, duration="20m")
    assert "self-service extension 2 of 2 (50m of 1h added)" in messages(second)
    assert grant_row(core, grant_id).end_at == END + timedelta(minutes=50)
    # Beyond the allowance the template's approvers decide, and are asked as for any request.
    third = extend(core, grant_id, duration="5m")
    assert third.status == "pending_approval"
    assert core.workflow.approve(LEADER, third.id).status == "succeeded"
    assert grant_row(core, grant_id).end_at == END + timedelta(minutes=55)


def test_one_self_service_extension_over_the_total_goes_to_the_approvers(core: Core) -> None:
    load_model(core, example_with_extend("{times: 3, total: 1h}"))
    grant_id = active_grant(core)
    assert extend(core, grant_id, duration="90m").status == "pending_approval"


def test_an_auto_approved_template_refuses_extensions_beyond_its_allowance(core: Core) -> None:
    load_model(core, example_with_extend("{times: 1, total: 1h}", auto_approve=True))
    filed = core.workflow.file(MEMBER, draft())
    assert filed.grant is not None
    grant_id = filed.grant.id
    with invalid(core, "for", "extend_total"):
        extend(core, grant_id, duration="2h")
    assert extend(core, grant_id, duration="40m").status == "succeeded"
    with invalid(core, "for", "extend_times"):
        extend(core, grant_id, duration="10m")


# -- bad input: a clear error, nothing changed ------------------------------------------------


def test_only_the_holder_or_an_admin_may_ask_about_a_grant_that_exists(core: Core) -> None:
    grant_id = active_grant(core)
    with refused(core, NotFound, match="no grant #99"):
        extend(core, 99)
    for someone_else in (MEMBER2, LEADER):
        with refused(core, NotFound):
            extend(core, grant_id, someone_else)


def test_an_ended_or_ending_grant_is_not_extended(core: Core, clock: ManualClock) -> None:
    released = active_grant(core)
    core.grants.release(MEMBER, released)
    with refused(core, Conflict, match="it is revoked"):
        extend(core, released)
    due = active_grant(core)
    clock.set(END)  # its end has come; the sweeper has not run yet
    with refused(core, Conflict, match="its end has passed"):
        extend(core, due)


@pytest.mark.parametrize(
    ("asked", "field", "rule"),
    [
        ({"duration": None, "until": "2026-11-29T11:00Z"}, "until", "after_current_end"),
        ({"duration": None, "until": "2026-11-29T10:00Z"}, "until", "after_current_end"),
        ({"duration": None, "until": None}, "until", "one_of_until_or_for"),
        ({"duration": "1h", "until": "2026-11-29T12:00Z"}, "until", "one_of_until_or_for"),
        ({"duration": "6h1m"}, "for", "max_duration"),  # 2h + 6h1m: over the 8h maximum
        ({"duration": None, "until": "2026-11-29T17:00:01Z"}, "until", "max_duration"),
        ({"duration": "soon"}, "for", "duration_format"),
        ({"reason": "  "}, "reason", "required"),
    ],
)
def test_bad_input_names_the_field_and_the_rule(
    core: Core, asked: dict[str, str | None], field: str, rule: str
) -> None:
    grant_id = active_grant(core)
    with invalid(core, field, rule) as caught:
        extend(core, grant_id, **asked)  # type: ignore[arg-type]
    if rule == "max_duration":  # counted over the whole grant, and says the latest end
        assert "2026-11-29T17:00:00Z" in str(caught.value)


def test_the_whole_span_up_to_the_maximum_is_fine(core: Core) -> None:
    grant_id = active_grant(core)
    assert extend(core, grant_id, duration="6h").end_at == NOW + timedelta(hours=8)


def test_one_extension_of_a_grant_at_a_time(core: Core) -> None:
    grant_id = active_grant(core)
    first = extend(core, grant_id)
    with refused(core, Conflict, match=f"request #{first.id} to extend grant #{grant_id}"):
        extend(core, grant_id, duration="30m")
    # A new request for the same group is not an extension: it may be filed beside it.
    assert granted(core, LEADER, LEADER2).grant is not None


def test_a_locked_holder_may_not_extend(core: Core) -> None:
    grant_id = active_grant(core)
    other = active_grant(core, LEADER, LEADER2)
    core.locks.place(SECURITY, "group", WORK, "incident 9")
    with refused(core, Conflict):  # the lock ended the grant
        extend(core, grant_id)
    assert grant_row(core, other).status == "revoked"


def test_a_user_lock_refuses_an_admin_asking_for_the_holder(core: Core) -> None:
    grant_id = active_grant(core)
    core.locks.place(SECURITY, "user", "admin01", "phished")
    with refused(core, Locked, match="phished"):
        extend(core, grant_id, ADMIN)


# -- races: the old end, the sweeper, an ending ------------------------------------------------


def test_an_extension_still_waiting_at_the_old_end_expires_and_the_grant_ends(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    grant_id = active_grant(core)
    asked = extend(core, grant_id)
    clock.set(END)  # nobody decided; the sweeper is late
    with refused(core, Conflict, match="expired undecided"):
        core.workflow.approve(LEADER, asked.id)
    report = core.sweeper.run_due()
    assert (report.expired, report.requests_expired) == ([grant_id], [asked.id])
    assert grant_row(core, grant_id).end_at == END
    late = core.workflow.get(MEMBER, asked.id)
    assert late.status == "expired_unapproved"
    assert f"nobody decided before grant #{grant_id} reached its end; it ends then" in messages(
        late
    )
    assert provider.members(WORK) == frozenset()


def test_an_extension_approved_after_the_grant_ended_fails_and_changes_nothing(
    core: Core,
) -> None:
    grant_id = active_grant(core)
    asked = extend(core, grant_id)
    core.grants.revoke(ADMIN, grant_id, "incident 12")
    done = core.workflow.approve(LEADER, asked.id)
    assert done.status == "failed"
    assert any("was not extended" in m and "it ends as before" in m for m in messages(done))
    grant = grant_row(core, grant_id)
    assert (grant.status, grant.end_at, grant.end_reason) == ("revoked", END, "revoked")
    assert "grant.extended" not in actions(core)


def test_an_expiry_that_picked_the_grant_before_the_extension_committed_leaves_it(
    core: Core, clock: ManualClock, db_url: str, settings: Settings, provider: MemoryProvider
) -> None:
    """Another node, whose clock is a little ahead, reads the grant as due; the approval on
    this node commits the extension before that node starts the ending. The ending checks the
    end again under the row lock: the grant goes on, and nothing of the session is cut."""
    grant_id = active_grant(core)
    clock.set(END - timedelta(seconds=2))
    asked = extend(core, grant_id)
    ahead = ManualClock(END + timedelta(seconds=1))
    other_db = Database(db_url)
    try:
        other = assemble_core(other_db, settings, provider, ahead, model=None)
        with other.db.read() as s:
            picked = grants.due(s, ahead.now(), 100).expiring
        assert picked == [grant_id]
        core.workflow.approve(LEADER, asked.id)  # commits between the read and the ending
        result = other.end_grants.execute(picked, EndReason.EXPIRED, SWEEPER)
        assert (result.ended, result.pending) == ([], [])
    finally:
        other_db.dispose()
    grant = grant_row(core, grant_id)
    assert (grant.status, grant.end_at) == (GrantStatus.ACTIVE, END + timedelta(hours=1))
    clock.set(END + timedelta(seconds=1))
    assert can_assume(core)
    assert provider.members(WORK) == frozenset({"member01"})


def test_two_extensions_asked_at_once_make_one(core: Core) -> None:
    for _ in range(3):
        grant_id = active_grant(core)
        raised = at_once(
            partial(extend, core, grant_id, duration="30m"),
            partial(extend, core, grant_id, duration="1h"),
        )
        assert sorted(type(e).__name__ for e in raised) == ["Conflict", "NoneType"], raised
        core.grants.release(MEMBER, grant_id)


def test_an_approval_racing_a_lock_on_the_group_never_deadlocks(core: Core) -> None:
    """The approval locks the grant before the request, as a lock placement does: one waits
    for the other, and the grant ends either way (extended first, or never)."""
    for _ in range(3):
        grant_id = active_grant(core)
        asked = extend(core, grant_id)
        raised = at_once(
            partial(core.workflow.approve, LEADER, asked.id),
            lambda: core.locks.place(SECURITY, "group", WORK, "incident 13"),
        )
        assert all(e is None or isinstance(e, Conflict | Locked) for e in raised), raised
        assert grant_row(core, grant_id).status == "revoked"
        lock_id = core.locks.list_locks(SECURITY)[0].id
        core.locks.remove(SECURITY, lock_id)


def test_a_grant_imported_from_a_seed_tag_has_no_template_to_extend_it_by(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    provider.add_member("member01", WORK)
    tokyo_in_two_hours = clock.now().astimezone(ZoneInfo("Asia/Tokyo")) + timedelta(hours=2)
    provider.set_tag("member01", WORK, tokyo_in_two_hours.strftime("%Y%m%d%H%M"))
    core.reconciler.run()
    [imported] = core.grants.list_grants(MEMBER, active_only=True)
    with invalid(core, "grant", "unknown_template"):
        extend(core, imported.id)
