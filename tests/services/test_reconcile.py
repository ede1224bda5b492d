"""The reconciler on the in-memory provider: the move from the seed, group by group."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.grants import GrantStatus
from sekisho.providers.memory import MemoryProvider
from sekisho.services.reconcile import Kind
from sekisho.store.tables import AuditRow, GrantRow, TimelineRow

WORK = "ProdMemberWorkGroup"
TOKYO = ZoneInfo("Asia/Tokyo")  # the example model's zone, as the seed wrote its tags
TWO_HOURS = timedelta(hours=2)


def seed_member(provider: MemoryProvider, clock: ManualClock, user: str) -> None:
    """What the seed's runbook left: the member, and a TTL tag two hours ahead in Tokyo."""
    provider.add_member(user, WORK)
    tokyo_in_two_hours = clock.now().astimezone(TOKYO) + TWO_HOURS
    provider.set_tag(user, WORK, tokyo_in_two_hours.strftime("%Y%m%d%H%M"))


def test_a_group_unreadable_on_the_first_run_has_its_seed_members_imported_later(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    seed_member(provider, clock, "member01")
    provider.fail("members", times=2)  # IAM could list neither work group on the first run
    first = core.reconciler.run()
    assert WORK in first.unreadable
    assert first.done == []

    second = core.reconciler.run()
    assert [(f.kind, f.user) for f, _ in second.done] == [(Kind.IMPORT, "member01")]
    assert "member01" in provider.members(WORK)  # imported, not removed
    with core.db.read() as s:
        assert s.scalars(select(GrantRow.user)).all() == ["member01"]

    seed_member(provider, clock, "member02")  # added by hand after the move: removed
    third = core.reconciler.run()
    assert [(f.kind, f.user) for f, _ in third.done] == [(Kind.UNEXPECTED_MEMBER, "member02")]
    assert "member02" not in provider.members(WORK)


def test_an_imported_seed_grant_is_activated_like_any_other(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    """The import goes through the one write path: audited as an activation, on its request's
    timeline, and heard by subscribers (the gateway), as a runbook's activation is."""
    heard: list[tuple[str, int | None, str | None, str | None]] = []
    core.bus.subscribe(lambda e: heard.append((e.name, e.grant_id, e.user, e.group)))
    seed_member(provider, clock, "member01")
    report = core.reconciler.run()
    assert [(f.kind, f.user) for f, _ in report.done] == [(Kind.IMPORT, "member01")]
    with core.db.read() as s:
        grant = s.scalars(select(GrantRow)).one()
        assert (grant.status, grant.activated_at) == (GrantStatus.ACTIVE, clock.now())
        audited = s.scalars(
            select(AuditRow.action).where(AuditRow.request_id == grant.request_id)
        ).all()
        entry = s.scalars(select(AuditRow).where(AuditRow.grant_id == grant.id)).one()
        timeline = s.scalars(
            select(TimelineRow.message).where(TimelineRow.request_id == grant.request_id)
        ).all()
    assert audited == ["grant.activated"]
    assert (entry.actor, entry.detail["template"]) == (
        "sekisho:reconciler",
        "(imported seed TTL tag)",
    )
    assert timeline == [f"grant #{grant.id} imported"]
    assert ("grant.activated", grant.id, "member01", WORK) in heard
