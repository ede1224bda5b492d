"""Overlapping grants for one user and group never cut each other: access lasts to the last end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flows import PROD_MEMBER_ROLE, WORK, can_assume, file, grant_row, granted

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.access import Verb
from sekisho.domain.grants import GrantStatus
from sekisho.providers.memory import MemoryProvider
from sekisho.services.views import RequestView
from support import LEADER, LEADER2, MEMBER

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def grant_id_of(view: RequestView) -> int:
    assert view.grant is not None
    return view.grant.id


def test_ending_the_earlier_grant_keeps_access_until_the_later_end(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    early = grant_id_of(granted(core, duration="2h"))
    clock.advance(timedelta(hours=1))
    late = grant_id_of(granted(core, duration="3h", approver=LEADER2))  # ends at 13:00
    assert provider.tags("member01") == {WORK: "2026-11-29T13:00:00Z"}
    assert core.authz.decide("member01", Verb.ASSUME, PROD_MEMBER_ROLE).grant_id == late

    clock.set(NOW + timedelta(hours=2))
    assert core.sweeper.run_due().expired == [early]
    assert grant_row(core, early).status == GrantStatus.EXPIRED
    # The membership stays, re-tagged to the end of the grant that still holds it.
    assert provider.members(WORK) == {"member01"}
    assert provider.tags("member01") == {WORK: "2026-11-29T13:00:00Z"}
    assert can_assume(core)

    clock.set(NOW + timedelta(hours=4))
    assert core.sweeper.run_due().expired == [late]
    assert provider.members(WORK) == frozenset()
    assert provider.tags("member01") == {}
    assert not can_assume(core)


def test_a_shorter_later_grant_does_not_shorten_the_tag(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    long = grant_id_of(granted(core, duration="6h"))  # ends 15:00
    short = grant_id_of(granted(core, duration="1h", approver=LEADER2))  # ends 10:00
    assert provider.tags("member01") == {WORK: "2026-11-29T15:00:00Z"}
    assert core.authz.decide("member01", Verb.ASSUME, PROD_MEMBER_ROLE).grant_id == long

    clock.set(NOW + timedelta(hours=1))
    assert core.sweeper.run_due().expired == [short]
    assert provider.members(WORK) == {"member01"}
    assert provider.tags("member01") == {WORK: "2026-11-29T15:00:00Z"}
    assert can_assume(core)


def test_releasing_one_of_two_keeps_the_other(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    first = grant_id_of(granted(core, duration="2h"))
    second = grant_id_of(granted(core, duration="4h", approver=LEADER2))
    core.grants.release(MEMBER, second)
    assert grant_row(core, second).status == GrantStatus.REVOKED
    assert provider.members(WORK) == {"member01"}
    assert provider.tags("member01") == {WORK: "2026-11-29T11:00:00Z"}
    assert core.authz.decide("member01", Verb.ASSUME, PROD_MEMBER_ROLE).grant_id == first


def test_expiry_racing_an_activation_keeps_the_new_grant(
    core: Core, clock: ManualClock, provider: MemoryProvider
) -> None:
    """The sweeper ends the old grant while a new one for the same pair is activated."""
    old = grant_id_of(granted(core, duration="1h"))
    clock.set(NOW + timedelta(hours=1))
    pending = file(core, duration="2h")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(core.sweeper.run_due,)),
        threading.Thread(
            target=run, args=(lambda: core.workflow.approve(LEADER, pending.id, "again"),)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    core.sweeper.run_due()

    assert grant_row(core, old).status == GrantStatus.EXPIRED
    new = core.workflow.get(MEMBER, pending.id)
    assert new.grant is not None
    assert new.grant.status == "active"
    assert provider.members(WORK) == {"member01"}
    assert provider.tags("member01") == {WORK: "2026-11-29T12:00:00Z"}
    assert can_assume(core)
