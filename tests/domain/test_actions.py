"""The allowed actions as pure rules: each is its operation's own check asked ahead, so where
the check refuses (with the error the server sends) the action is never offered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from sekisho.domain import actions
from sekisho.domain.access import Template
from sekisho.domain.actions import Action, Viewer
from sekisho.domain.errors import AlreadyDecided, Conflict, Forbidden, NotApprover, SelfApproval
from sekisho.domain.extensions import check_extendable
from sekisho.domain.grants import (
    GrantStatus,
    GrantWindow,
    check_endable,
    check_release,
    may_revoke,
)
from sekisho.domain.requests import (
    ApprovalDecision,
    RecordedDecision,
    RequestStatus,
    check_cancel,
    check_decidable,
    decide,
)
from sekisho.model.loader import load_text
from support import EXAMPLE_TEXT

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)
PENDING = RequestStatus.PENDING_APPROVAL
LEADER = Viewer("leader01", frozenset({"LeaderGroup", "ChangeApprovalGroup"}), admin=False)
MEMBER = Viewer("member01", frozenset({"MemberGroup"}), admin=False)
ADMIN = Viewer("admin01", frozenset({"JumpAdminGroup"}), admin=True)
AUDITOR = Viewer("auditor01", frozenset({"AuditGroup"}), admin=False)


@pytest.fixture(scope="module")
def template() -> Template:
    found = load_text(EXAMPLE_TEXT).template("AddUserToGroup")
    assert found is not None
    return found


def offered(
    viewer: Viewer,
    template: Template | None,
    *,
    status: RequestStatus = PENDING,
    level: int = 0,
    decide_by: datetime = LATER,
    subject: str = "member01",
    decisions: Sequence[RecordedDecision] = (),
) -> frozenset[Action]:
    """What `viewer` is offered on member01's request."""
    return actions.on_request(
        viewer,
        template=template,
        status=status,
        level=level,
        decide_by=decide_by,
        requester="member01",
        subject=subject,
        decisions=decisions,
        now=NOW,
    )


def server_decides(
    viewer: Viewer,
    template: Template,
    *,
    status: RequestStatus = PENDING,
    level: int = 0,
    decide_by: datetime = LATER,
    subject: str = "member01",
    decisions: Sequence[RecordedDecision] = (),
) -> None:
    """What DecideRequest checks, in its order."""
    found = check_decidable(
        request_id=1,
        template_name=template.name,
        template=template,
        status=status,
        level=level,
        decide_by=decide_by,
        now=NOW,
    )
    decide(
        template=found,
        status=status,
        level=level,
        requester="member01",
        subject=subject,
        approver=viewer.name,
        approver_groups=viewer.standing_groups,
        decisions=decisions,
        decision=ApprovalDecision.APPROVE,
    )


def test_an_approver_may_decide_and_the_requester_may_cancel(template: Template) -> None:
    assert offered(LEADER, template) == {Action.APPROVE, Action.REJECT}
    server_decides(LEADER, template)
    assert offered(MEMBER, template) == {Action.CANCEL}
    assert offered(ADMIN, template) == set()  # admins decide no level of this template
    assert offered(LEADER, None) == set()  # the template is gone: nothing to decide by


SAID = RecordedDecision(0, "leader01", ApprovalDecision.APPROVE, "ok", NOW)


@pytest.mark.parametrize(
    ("viewer", "facts", "error"),
    [
        (LEADER, {"decide_by": NOW}, Conflict),  # the deadline came: it expires undecided
        (LEADER, {"level": 5}, Conflict),  # the template changed under it
        (LEADER, {"status": RequestStatus.APPROVED}, AlreadyDecided),
        (LEADER, {"decisions": (SAID,)}, AlreadyDecided),  # each person decides once
        (LEADER, {"subject": "leader01"}, SelfApproval),  # nobody decides their own access
        (MEMBER, {}, SelfApproval),
        (AUDITOR, {}, NotApprover),  # may read it, decides no level
    ],
)
def test_no_decision_is_offered_where_the_server_refuses(
    template: Template, viewer: Viewer, facts: dict[str, object], error: type[Exception]
) -> None:
    assert not offered(viewer, template, **facts) & {Action.APPROVE, Action.REJECT}  # type: ignore[arg-type]
    with pytest.raises(error):
        server_decides(viewer, template, **facts)  # type: ignore[arg-type]


def test_only_the_requester_cancels_and_only_while_pending(template: Template) -> None:
    assert Action.CANCEL not in offered(MEMBER, template, status=RequestStatus.APPROVED)
    with pytest.raises(Conflict):
        check_cancel(
            request_id=1, canceller="member01", requester="member01", status=RequestStatus.APPROVED
        )
    assert Action.CANCEL not in offered(LEADER, template)
    with pytest.raises(Forbidden):
        check_cancel(request_id=1, canceller="leader01", requester="member01", status=PENDING)


def grant(status: GrantStatus, end_at: datetime, holder: str = "member01") -> GrantWindow:
    return GrantWindow(1, holder, "ProdMemberWorkGroup", status, NOW - timedelta(hours=1), end_at)


@pytest.mark.parametrize(
    ("status", "end_at", "usable"),
    [
        (GrantStatus.ACTIVE, LATER, True),
        (GrantStatus.ACTIVE, NOW, False),  # its end has come: the sweeper ends it
        (GrantStatus.ENDING, LATER, False),  # ending already
        (GrantStatus.ACTIVATING, LATER, False),  # not usable yet
        (GrantStatus.REVOKED, LATER, False),
    ],
)
def test_a_grant_ends_early_only_while_it_is_usable(
    status: GrantStatus, end_at: datetime, usable: bool
) -> None:
    held = grant(status, end_at)
    holder, admin = {Action.RELEASE, Action.EXTEND}, {Action.EXTEND, Action.REVOKE}
    assert actions.on_grant(MEMBER, held, NOW) == (holder if usable else set())
    assert actions.on_grant(ADMIN, held, NOW) == (admin if usable else set())
    if not usable:  # what ExtendGrant answers: a conflict
        with pytest.raises(Conflict, match="cannot be extended"):
            check_extendable(held, NOW)
    if not usable:  # what ReleaseGrant and RevokeGrant answer: a conflict
        with pytest.raises(Conflict, match="not active"):
            check_endable(held, NOW)
        with pytest.raises(Conflict):
            check_release(held, "member01", NOW)


def test_only_the_holder_releases_and_only_an_admin_revokes() -> None:
    held = grant(GrantStatus.ACTIVE, LATER)
    with pytest.raises(Forbidden, match="only the holder"):
        check_release(held, "admin01", NOW)
    assert Action.RELEASE not in actions.on_grant(ADMIN, held, NOW)
    assert not may_revoke(held, admin=False, now=NOW)
    # An admin's own grant: they may release it and revoke it.
    own = grant(GrantStatus.ACTIVE, LATER, holder="admin01")
    assert actions.on_grant(ADMIN, own, NOW) == {Action.RELEASE, Action.EXTEND, Action.REVOKE}


def test_only_the_holder_or_an_admin_is_offered_an_extension() -> None:
    held = grant(GrantStatus.ACTIVE, LATER)
    stranger = Viewer("member02", frozenset({"MemberGroup"}), admin=False)
    assert Action.EXTEND not in actions.on_grant(stranger, held, NOW)
    assert Action.EXTEND in actions.on_grant(MEMBER, held, NOW)
    assert Action.EXTEND in actions.on_grant(ADMIN, held, NOW)
