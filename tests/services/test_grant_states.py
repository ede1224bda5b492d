"""The grant state machine: every status change is checked, as a request's is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sekisho.domain.errors import Conflict
from sekisho.domain.grants import (
    ENDED,
    EndReason,
    GrantStatus,
    check_ending,
    check_transition,
    ended_status,
)
from sekisho.store import grants
from sekisho.store.tables import GrantRow

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
S = GrantStatus


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.ACTIVATING, S.ACTIVE),
        (S.ACTIVATING, S.ENDING),
        (S.ACTIVE, S.ENDING),
        (S.ENDING, S.EXPIRED),
        (S.ENDING, S.REVOKED),
        (S.ENDING, S.FAILED),
    ],
)
def test_the_allowed_moves(current: GrantStatus, new: GrantStatus) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.ACTIVE, S.EXPIRED),  # never ended before the provider confirmed
        (S.ACTIVE, S.ACTIVE),
        (S.ACTIVATING, S.REVOKED),
        (S.ENDING, S.ACTIVE),  # access that ended never comes back
        *[(ended, S.ACTIVE) for ended in sorted(ENDED)],
        *[(ended, S.ENDING) for ended in sorted(ENDED)],
    ],
)
def test_every_other_move_is_a_conflict(current: GrantStatus, new: GrantStatus) -> None:
    with pytest.raises(Conflict, match=f"{current.value} cannot become {new.value}"):
        check_transition(current, new)


@pytest.mark.parametrize("reason", [r for r in EndReason if r is not EndReason.FAILED])
def test_only_a_failed_run_ends_a_grant_still_activating(reason: EndReason) -> None:
    check_ending(S.ACTIVE, reason)
    check_ending(S.ACTIVATING, EndReason.FAILED)
    with pytest.raises(Conflict, match="still activating"):
        check_ending(S.ACTIVATING, reason)


def test_where_an_ending_lands() -> None:
    assert ended_status(EndReason.EXPIRED) is S.EXPIRED
    assert ended_status(EndReason.FAILED) is S.FAILED
    for early in (EndReason.RELEASED, EndReason.REVOKED, EndReason.REMOVED):
        assert ended_status(early) is S.REVOKED


def test_a_stored_grant_moves_only_as_the_machine_allows() -> None:
    row = GrantRow(
        id=1,
        request_id=1,
        user="member01",
        group_name="ProdMemberWorkGroup",
        start_at=NOW,
        end_at=NOW + timedelta(hours=2),
        status=S.ACTIVE,
    )
    with pytest.raises(Conflict):
        grants.move(row, S.EXPIRED)
    assert row.status == S.ACTIVE
    grants.move(row, S.ENDING)
    grants.move(row, S.EXPIRED)
    assert row.status == S.EXPIRED
