"""Brokered switch-role against the STS/IAM twin: what is asked of STS, what lands in the audit
trail, and what a person can still do with the credentials once a grant ends early. The real
STS and IAM (a moto server) are in tests/aws; here AWS would add nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flows import PROD_MEMBER_ROLE, WORK, actions, audit_rows, granted

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.domain.actor import Actor
from sekisho.domain.credentials import STS_MINIMUM
from sekisho.domain.errors import Conflict, Forbidden, InvalidInput, ProviderFailure
from sekisho.domain.grants import GrantStatus
from sekisho.domain.timespec import iso
from sekisho.providers.memory import MemoryProvider
from sekisho.providers.memory_credentials import MemoryRoleCredentials
from sekisho.store.db import Database
from sekisho.store.tables import GrantRow
from support import ADMIN, EXAMPLE_TEXT, MEMBER, MEMBER2, assemble_core

PROD_ARN = "arn:aws:iam::444444444444:role/Prod_MemberRole"
AWS_PROVIDER = "provider:\n  type: aws_iam\n  region: us-east-1\n  identity_account: jump\n\n"


def aws_model() -> str:
    """The example model on IAM (no endpoint: nothing here reaches AWS); the prod member role
    may sign in to the console."""
    text = EXAMPLE_TEXT.replace(
        "{ name: Prod_MemberRole,", "{ name: Prod_MemberRole, console: true,"
    )
    return text.replace("accounts:\n", AWS_PROVIDER + "accounts:\n", 1)


@pytest.fixture
def sts(clock: ManualClock) -> MemoryRoleCredentials:
    return MemoryRoleCredentials(clock)


@pytest.fixture
def core(
    db_url: str,
    clock: ManualClock,
    provider: MemoryProvider,
    settings: Settings,
    sts: MemoryRoleCredentials,
) -> Iterator[Core]:
    db = Database(db_url)
    built = assemble_core(
        db, settings, provider, clock, (aws_model(), "aws.yaml"), role_credentials=sts
    )
    yield built
    db.dispose()


def grant_id(core: Core, actor: Actor = MEMBER, duration: str = "30m") -> int:
    done = granted(core, actor, duration=duration)
    assert done.grant is not None, [t.message for t in done.timeline]
    return done.grant.id


def test_no_grant_no_credentials_and_the_refusal_is_audited(
    core: Core, sts: MemoryRoleCredentials
) -> None:
    with pytest.raises(Forbidden, match="no active grant"):
        core.broker.assume(MEMBER, PROD_MEMBER_ROLE)
    assert sts.issued == []
    denied = audit_rows(core)[-1]
    assert (denied.action, denied.actor, denied.subject, denied.object) == (
        "authz.denied",
        "member01",
        "member01",
        PROD_MEMBER_ROLE,
    )
    assert denied.detail["verb"] == "assume"


def test_credentials_never_outlive_the_grant(
    core: Core, sts: MemoryRoleCredentials, clock: ManualClock
) -> None:
    grant = grant_id(core)
    clock.advance(timedelta(minutes=5))
    issued = core.broker.assume(MEMBER, PROD_MEMBER_ROLE, timedelta(hours=4))
    (done,) = sts.issued
    with core.db.read() as s:
        end = s.get_one(GrantRow, grant).end_at
    assert done.ask.role_arn == issued.role_arn == PROD_ARN
    assert done.ask.session_name == issued.session_name == "member01=req1"
    assert done.ask.source_identity == "member01"
    assert done.ask.duration == timedelta(minutes=25)  # the grant's remainder, not the 4h
    assert done.ask.not_after == end  # and a session policy for what STS rounds up
    assert issued.via == f"active grant #{grant} in {WORK}"
    assert (issued.access_key_id, issued.expiration) == (done.keys.access_key_id, end)

    entry = audit_rows(core)[-1]
    assert (entry.action, entry.grant_id, entry.request_id, entry.object) == (
        "credentials.issued",
        grant,
        1,
        PROD_MEMBER_ROLE,
    )
    assert entry.detail == {
        "role": PROD_ARN,
        "via": issued.via,
        "expires": iso(end),
        "output": "session member01=req1 for 25m",
    }
    assert issued.secret_access_key not in str([r.detail for r in audit_rows(core)])


def test_a_grant_about_to_end_gets_the_sts_minimum_cut_by_the_session_policy(
    core: Core, sts: MemoryRoleCredentials, clock: ManualClock
) -> None:
    grant_id(core)
    clock.advance(timedelta(minutes=25))
    issued = core.broker.assume(MEMBER, PROD_MEMBER_ROLE)
    (done,) = sts.issued
    assert done.ask.duration == STS_MINIMUM
    keys = done.keys
    assert issued.expiration == clock.now() + STS_MINIMUM
    assert sts.honours(keys, clock.now() + timedelta(minutes=4))
    assert not sts.honours(keys, clock.now() + timedelta(minutes=6))  # the grant ended


def test_standing_access_is_a_standing_session_of_the_roles_length(
    core: Core, sts: MemoryRoleCredentials
) -> None:
    issued = core.broker.assume(MEMBER, "dev/Dev_MemberRole", timedelta(hours=24))
    (done,) = sts.issued
    assert issued.session_name == "member01=standing"
    assert issued.via == "standing member of MemberGroup"
    assert done.ask.not_after is None
    assert done.ask.duration == timedelta(hours=1)  # the role's max_session
    assert audit_rows(core)[-1].grant_id is None


def test_console_sign_in_only_where_the_model_allows_it(
    core: Core, sts: MemoryRoleCredentials
) -> None:
    grant_id(core)
    with pytest.raises(Forbidden, match="console"):
        core.broker.assume(MEMBER, "prod/Prod_ReadOnlyRole", console=True)
    assert sts.issued == []
    issued = core.broker.assume(MEMBER, PROD_MEMBER_ROLE, console=True)
    assert issued.console_url is not None
    assert issued.access_key_id in issued.console_url
    assert core.broker.assume(MEMBER, PROD_MEMBER_ROLE).console_url is None


def test_sts_failing_issues_nothing_and_audits_nothing(
    core: Core, sts: MemoryRoleCredentials
) -> None:
    grant_id(core)
    before = actions(core)
    sts.fail("issue")
    with pytest.raises(ProviderFailure, match="injected"):
        core.broker.assume(MEMBER, PROD_MEMBER_ROLE)
    assert actions(core) == before
    sts.fail("console_url")
    with pytest.raises(ProviderFailure):
        core.broker.assume(MEMBER, PROD_MEMBER_ROLE, console=True)
    assert actions(core) == before


def test_unknown_roles_and_other_providers_are_refused(
    core: Core, sts: MemoryRoleCredentials
) -> None:
    with pytest.raises(InvalidInput) as unknown:
        core.broker.assume(MEMBER, "prod/NoSuchRole")
    assert unknown.value.problems[0].rule == "unknown_role"
    core.models.load(EXAMPLE_TEXT, "local.yaml", Actor.system("test"))  # the local provider
    with pytest.raises(Conflict, match="aws_iam"):
        core.broker.assume(MEMBER, "dev/Dev_MemberRole")
    assert sts.issued == []


def test_ending_early_denies_the_users_older_sessions_only(
    core: Core, sts: MemoryRoleCredentials, clock: ManualClock
) -> None:
    mine = grant_id(core)
    grant_id(core, MEMBER2)
    mine_keys = core.broker.assume(MEMBER, PROD_MEMBER_ROLE)
    theirs = core.broker.assume(MEMBER2, PROD_MEMBER_ROLE)
    clock.advance(timedelta(minutes=1))
    ended_at = clock.now()
    core.grants.release(MEMBER, mine)
    assert sts.denials == {("Prod_MemberRole", "member01"): ended_at}
    keys = {i.keys.access_key_id: i.keys for i in sts.issued}
    assert not sts.honours(keys[mine_keys.access_key_id], ended_at)
    assert sts.honours(keys[theirs.access_key_id], ended_at)


def test_an_unconfirmed_revocation_keeps_the_grant_ending(
    core: Core, sts: MemoryRoleCredentials
) -> None:
    grant = grant_id(core)
    sts.fail("deny_older_sessions")
    core.grants.release(MEMBER, grant)
    with core.db.read() as s:
        row = s.get_one(GrantRow, grant)
        assert row.status == GrantStatus.ENDING
        assert "injected" in (row.last_error or "")


def test_a_role_lock_denies_the_standing_sessions_of_that_role_and_no_other(
    core: Core, sts: MemoryRoleCredentials, clock: ManualClock
) -> None:
    dev = core.broker.assume(MEMBER, "dev/Dev_MemberRole")
    stg = core.broker.assume(MEMBER, "stg/Stg_MemberRole")
    clock.advance(timedelta(minutes=1))
    at = clock.now()
    placed = core.locks.place(ADMIN, "role", "dev/Dev_MemberRole", "trust policy under review")
    assert {user for role, user in sts.denials if role == "Dev_MemberRole"} >= {
        "member01",
        "member02",
    }
    assert {role for role, _ in sts.denials} == {"Dev_MemberRole"}
    assert set(sts.denials.values()) == {at}
    keys = {i.keys.access_key_id: i.keys for i in sts.issued}
    assert not sts.honours(keys[dev.access_key_id], at)
    assert sts.honours(keys[stg.access_key_id], at)
    assert f"denied member01's sessions of dev/Dev_MemberRole issued before {iso(at)}" in (
        placed.role_sessions
    )


def test_a_standing_group_lock_denies_its_members_sessions_of_its_roles(
    core: Core, sts: MemoryRoleCredentials, clock: ManualClock
) -> None:
    core.broker.assume(MEMBER2, "dev/Dev_MemberRole")
    clock.advance(timedelta(minutes=1))
    core.locks.place(ADMIN, "group", "MemberGroup", "bad change")
    group = core.model_source.model().group("MemberGroup")
    assert group is not None
    assert {"dev/Dev_MemberRole", "stg/Stg_MemberRole"} <= group.permissions.assume
    assert set(sts.denials) == {
        (ref.split("/")[1], user) for ref in group.permissions.assume for user in group.members
    }
