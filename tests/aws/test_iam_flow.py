"""The seed's flow on IAM (a moto server with policy enforcement): request, approve, switch role,
expire; the reconciler; brokered switch-role; revoking older sessions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from aws_support import ACCOUNT, REGION, Moto, World

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.errors import Forbidden
from sekisho.domain.extensions import ExtensionDraft
from sekisho.domain.grants import GrantStatus
from sekisho.providers.aws_credentials import REVOKE_POLICY, deny_older_sessions
from sekisho.services.reconcile import Kind
from sekisho.store.tables import AuditRow, GrantRow
from support import ADMIN, LEADER, MEMBER, MEMBER2, draft

WORK = "ProdMemberWorkGroup"
ROLE = "Prod_MemberRole"


def granted(core: Core, actor=MEMBER, duration: str = "2h") -> int:  # type: ignore[no-untyped-def]
    request = core.workflow.file(actor, draft(duration=duration))
    done = core.workflow.approve(LEADER, request.id, "ok")
    assert done.grant is not None, done.timeline
    assert done.status == "succeeded", [t.message for t in done.timeline]
    return done.grant.id


def audit_actions(core: Core) -> list[str]:
    with core.db.read() as s:
        return [
            a for (a,) in s.execute(AuditRow.__table__.select().with_only_columns(AuditRow.action))
        ]


def test_the_seed_flow_on_iam(aws_core: Core, world: World, clock: ManualClock) -> None:
    # Before approval the switch into production fails; after it, it succeeds.
    assert not world.can_assume("member01", ROLE)
    assert world.can_assume("member01", "Dev_MemberRole")  # standing access
    granted(aws_core)
    assert world.members(WORK) == {"member01"}
    assert world.tags("member01") == {WORK: "202611292000"}  # the seed's form: 11:00Z in Tokyo
    assert world.can_assume("member01", ROLE)

    # At the end time the membership and the tag are gone, and the switch fails again.
    clock.advance(timedelta(hours=2))
    report = aws_core.sweeper.run_due()
    assert report.expired
    assert world.members(WORK) == set()
    assert WORK not in world.tags("member01")
    assert not world.can_assume("member01", ROLE)


def test_an_extension_rewrites_the_iam_ttl_tag_and_keeps_the_member(
    aws_core: Core, world: World, clock: ManualClock
) -> None:
    grant_id = granted(aws_core)
    asked = aws_core.workflow.extend(MEMBER, grant_id, ExtensionDraft("overran", duration="1h"))
    done = aws_core.workflow.approve(LEADER, asked.id, "ok")
    assert [t.status for t in done.timeline if t.kind.startswith("step:")] == ["ok", "ok"]
    # The seed's TTL checker reads the new end: 12:00Z is 21:00 in Tokyo.
    assert world.tags("member01") == {WORK: "202611292100"}
    clock.advance(timedelta(hours=2))  # the old end
    assert not aws_core.sweeper.run_due().expired
    assert world.members(WORK) == {"member01"}
    assert world.can_assume("member01", ROLE)
    clock.advance(timedelta(hours=1))  # the new end
    assert aws_core.sweeper.run_due().expired == [grant_id]
    assert world.members(WORK) == set()


def test_the_reconciler_removes_a_member_added_by_hand(aws_core: Core, world: World) -> None:
    aws_core.reconciler.run()  # the first run (nothing to import)
    world.client("iam").add_user_to_group(GroupName=WORK, UserName="member02")
    assert world.can_assume("member02", ROLE)

    dry = aws_core.reconciler.run(dry_run=True)
    assert [(f.kind, f.user) for f in dry.findings] == [(Kind.UNEXPECTED_MEMBER, "member02")]
    assert world.members(WORK) == {"member02"}  # a dry run changes nothing

    report = aws_core.reconciler.run()
    assert [(f.user, f.group) for f, _ in report.done] == [("member02", WORK)]
    assert world.members(WORK) == set()
    assert not world.can_assume("member02", ROLE)
    assert "reconcile.unexpected_member" in audit_actions(aws_core)


def test_the_first_run_imports_the_seeds_ttl_tags(
    aws_core: Core, world: World, clock: ManualClock
) -> None:
    """Moving from the seed: a member with a future TTL tag (Japan time, YYYYMMDDhhmm)
    becomes a grant that ends when the tag said; later hand-made members are removed."""
    iam = world.client("iam")
    iam.add_user_to_group(GroupName=WORK, UserName="member01")
    # The clock is 2026-11-29 09:00 UTC = 18:00 in Tokyo; the seed's tag says 20:00 there.
    iam.tag_user(UserName="member01", Tags=[{"Key": WORK, "Value": "202611292000"}])
    report = aws_core.reconciler.run()
    assert [(f.kind, f.user) for f, _ in report.done] == [(Kind.IMPORT, "member01")]
    with aws_core.db.read() as s:
        grant = s.query(GrantRow).one()
        assert grant.status == GrantStatus.ACTIVE
        assert grant.end_at.isoformat().startswith("2026-11-29T11:00")
    assert world.tags("member01")[WORK] == "202611292000"  # still the seed's form: kept

    iam.add_user_to_group(GroupName=WORK, UserName="member02")
    iam.tag_user(UserName="member02", Tags=[{"Key": WORK, "Value": "202611292000"}])
    again = aws_core.reconciler.run()
    assert [(f.kind, f.user) for f, _ in again.done] == [(Kind.UNEXPECTED_MEMBER, "member02")]

    clock.advance(timedelta(hours=2))
    aws_core.sweeper.run_due()
    assert world.members(WORK) == set()


def test_the_reconciler_repairs_and_cleans(aws_core: Core, world: World) -> None:
    granted(aws_core)
    iam = world.client("iam")
    iam.remove_user_from_group(GroupName=WORK, UserName="member01")  # lost by hand
    iam.tag_user(UserName="member02", Tags=[{"Key": WORK, "Value": "202601010000"}])  # stale
    report = aws_core.reconciler.run()
    kinds = sorted((f.kind, f.user) for f, _ in report.done)
    assert kinds == [(Kind.MISSING_MEMBERSHIP, "member01"), (Kind.STALE_TAG, "member02")]
    assert world.members(WORK) == {"member01"}
    assert WORK not in world.tags("member02")


def test_brokered_switch_role_never_outlives_the_grant(
    aws_core: Core, world: World, clock: ManualClock
) -> None:
    with pytest.raises(Forbidden):
        aws_core.broker.assume(MEMBER, f"prod/{ROLE}")
    grant_id = granted(aws_core, duration="30m")
    issued = aws_core.broker.assume(MEMBER, f"prod/{ROLE}", timedelta(hours=4))
    assert issued.session_name == "member01=req1"
    assert issued.role_arn == f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    lifetime = issued.expiration - datetime.now(UTC)  # STS counts on the real clock
    assert lifetime <= timedelta(minutes=31)  # capped to the grant, not the 4h asked
    assert issued.via == f"active grant #{grant_id} in {WORK}"
    who = boto3.client(
        "sts",
        region_name=REGION,
        endpoint_url=world.moto.url,
        aws_access_key_id=issued.access_key_id,
        aws_secret_access_key=issued.secret_access_key,
        aws_session_token=issued.session_token,
    ).get_caller_identity()
    assert who["Arn"].endswith(f"assumed-role/{ROLE}/member01=req1")
    assert "credentials.issued" in audit_actions(aws_core)
    assert issued.secret_access_key not in json.dumps(audit_dump(aws_core))


def test_ending_early_revokes_the_users_older_sessions(aws_core: Core, world: World) -> None:
    grant_id = granted(aws_core)
    granted(aws_core, MEMBER2)
    aws_core.grants.release(MEMBER, grant_id)
    policy = world.client("iam").get_role_policy(
        RoleName=ROLE, PolicyName="SekishoRevokedSessions"
    )["PolicyDocument"]
    document = policy if isinstance(policy, dict) else json.loads(policy)
    (deny,) = document["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"]["StringLike"]["aws:userid"] == "*:member01=*"  # member02 is safe
    assert "aws:TokenIssueTime" in deny["Condition"]["DateLessThan"]
    assert world.members(WORK) == {"member02"}  # the other grant keeps its membership


def test_revoking_needs_an_admin_and_ends_iam_access(aws_core: Core, world: World) -> None:
    grant_id = granted(aws_core)
    aws_core.grants.revoke(ADMIN, grant_id, "suspicious activity")
    assert world.members(WORK) == set()
    assert not world.can_assume("member01", ROLE)


def audit_dump(core: Core) -> list[str]:
    with core.db.read() as s:
        return [str(row.detail) for row in s.query(AuditRow)]


def test_revoking_one_user_s_sessions_keeps_another_user_s_denial(moto: Moto) -> None:
    """Statement ids keep only letters and digits: "a.b" and "ab" must still get their own."""
    moto.reset()
    iam = moto.iam()
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps({"Statement": []}))
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    deny_older_sessions(iam, ROLE, "a.b", now, now)
    deny_older_sessions(iam, ROLE, "ab", now + timedelta(minutes=5), now + timedelta(minutes=5))
    document = iam.get_role_policy(RoleName=ROLE, PolicyName=REVOKE_POLICY)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    denied = {s["Condition"]["StringLike"]["aws:userid"] for s in document["Statement"]}
    assert denied == {"*:a.b=*", "*:ab=*"}
