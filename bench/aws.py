"""The AWS yardsticks, against a `moto_server` process with IAM policy enforcement on.

1. Approval to AssumeRole allowed: a member files a request; the clock starts when the
   approver's `approve` is called (in process: the runbook adds the IAM user to the IAM group
   and tags them through the `aws_iam` provider) and stops at the member's first successful
   `sts:AssumeRole` into the production role with their own access keys. The peer is the raw
   IAM floor: the same two IAM calls (add to group, tag) made directly with boto3.
2. Reconcile over many users: the model has N users in IAM; some hold grants, some were added
   to the work group by hand, some carry stale TTL tags. The reconciler's first pass (which
   fixes all of that) and a clean pass are timed. The peer is the raw reads any checker must
   make: the work groups' members and every user's tags, with boto3.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import boto3

from bench.report import Section, Table
from bench.stats import Summary, fmt, fmt_ratio, median
from sekisho.bootstrap import Core, build_core, ensure_schema
from sekisho.config import Settings
from sekisho.domain.actor import Actor
from sekisho.domain.drafts import RequestDraft

KEY = "aws"
ACCOUNT = "123456789012"
REGION = "us-east-1"
WORK, ROLE = "ProdMemberWorkGroup", "Prod_MemberRole"
INFO = {"target": "console", "change": "bench", "rollback": "none"}
T = TypeVar("T")


@dataclass(frozen=True)
class AwsPlan:
    approvals: int
    users: int
    granted: int
    by_hand: int
    stale: int
    clean_runs: int


FULL = AwsPlan(approvals=40, users=1000, granted=200, by_hand=50, stale=50, clean_runs=3)
QUICK = AwsPlan(approvals=8, users=100, granted=20, by_hand=5, stale=5, clean_runs=1)


@dataclass
class AwsResult:
    approval_ms: list[float] = field(default_factory=list)
    approve_call_ms: list[float] = field(default_factory=list)
    raw_iam_ms: list[float] = field(default_factory=list)
    users: int = 0
    first_pass_s: float = 0.0
    first_pass_fixed: int = 0
    clean_pass_s: list[float] = field(default_factory=list)
    raw_reads_s: list[float] = field(default_factory=list)
    moto_version: str = ""

    def facts(self) -> list[tuple[str, str]]:
        return [("AWS stand-in", f"moto_server {self.moto_version}, IAM policy enforcement on")]


class Moto:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        moto_server = Path(sys.executable).parent / "moto_server"
        self.process = subprocess.Popen(
            [str(moto_server), "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)

    def enforce(self) -> None:
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    def client(self, service: str, key: tuple[str, str]) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=key[0],
            aws_secret_access_key=key[1],
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def model_text(endpoint: str, users: int) -> str:
    names = [f"u{i:04d}" for i in range(users)]
    user_lines = "\n".join(f"  - {{ name: {n} }}" for n in names)
    return f"""\
version: 1
settings: {{ timezone: Asia/Tokyo }}
provider: {{ type: aws_iam, region: {REGION}, endpoint_url: {endpoint}, identity_account: jump }}
accounts:
  - {{ name: jump, aws_account_id: "{ACCOUNT}" }}
  - name: prod
    aws_account_id: "{ACCOUNT}"
    roles: [{{ name: {ROLE}, max_session: 12h }}]
targets: []
users:
  - {{ name: approver1 }}
  - {{ name: approver2 }}
{user_lines}
groups:
  - {{ name: Members, kind: standing, members: [{", ".join(names)}] }}
  - name: Approvers
    kind: standing
    members: [approver1, approver2]
    permissions: {{ approve: [AddUserToGroup] }}
  - name: {WORK}
    kind: work
    permissions: {{ assume: [prod/{ROLE}] }}
templates:
  - name: AddUserToGroup
    action: grant
    eligibility: [{{ requesters: [Members], groups: [{WORK}] }}]
    approval: [{{ approvers: Approvers }}]
    change_info:
      - {{ name: target, title: Target }}
      - {{ name: change, title: Change }}
      - {{ name: rollback, title: Rollback }}
"""


def everything() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }


def run(plan: AwsPlan, workdir: Path, timed: Callable[[str, Callable[[], T]], T]) -> AwsResult:
    import moto

    result = AwsResult(users=plan.users, moto_version=moto.__version__)
    server = Moto()
    try:
        keys = timed("IAM world", lambda: build_world(server, plan.users))
        core = open_core(workdir, server, plan.users, keys["sekisho"])
        server.enforce()
        timed(
            "approval to AssumeRole", lambda: approval_to_assume(core, server, keys, plan, result)
        )
        timed("reconcile", lambda: reconcile(core, server, keys, plan, result))
    finally:
        server.stop()
    return result


def build_world(server: Moto, users: int) -> dict[str, tuple[str, str]]:
    iam = server.client("iam", ("setup", "setup"))
    keys: dict[str, tuple[str, str]] = {}

    def person(name: str, policy: dict[str, Any] | None = None, key: bool = True) -> None:
        iam.create_user(UserName=name)
        if policy is not None:
            iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
        if key:
            made = iam.create_access_key(UserName=name)["AccessKey"]
            keys[name] = (made["AccessKeyId"], made["SecretAccessKey"])

    person("sekisho", everything())
    person("admin", everything())
    iam.create_group(GroupName=WORK)
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    iam.put_group_policy(
        GroupName=WORK,
        PolicyName="switch",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}
                ],
            }
        ),
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    for name in ("approver1", "approver2"):
        person(name, key=False)
    for i in range(users):
        person(f"u{i:04d}", key=i < 200)  # only requesters need keys
    return keys


def open_core(workdir: Path, server: Moto, users: int, sekisho_key: tuple[str, str]) -> Core:
    import os

    os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = sekisho_key
    settings = Settings(data_dir=workdir / "aws", login_failure_delay=0)
    core = build_core(settings)
    ensure_schema(core)
    core.models.load(model_text(server.url, users), "bench-aws.yaml", Actor.system("bench"))
    return core


def can_assume(server: Moto, key: tuple[str, str], user: str) -> bool:
    try:
        server.client("sts", key).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{ROLE}", RoleSessionName=f"{user}-bench"
        )
    except Exception:
        return False
    return True


def approval_to_assume(
    core: Core, server: Moto, keys: dict[str, tuple[str, str]], plan: AwsPlan, result: AwsResult
) -> None:
    approver = Actor("approver1", "bench")
    admin = server.client("iam", keys["admin"])
    for i in range(plan.approvals):
        user = f"u{i:04d}"
        actor = Actor(user, "bench")
        draft = RequestDraft("AddUserToGroup", WORK, "bench", duration="1h", info=INFO)
        request = core.workflow.file(actor, draft)
        assert not can_assume(server, keys[user], user)
        t0 = time.perf_counter()
        done = core.workflow.approve(approver, request.id, "ok")
        t1 = time.perf_counter()
        while not can_assume(server, keys[user], user):
            if time.perf_counter() - t0 > 30:
                raise RuntimeError(f"{user} never could assume the role: {done.status}")
        t2 = time.perf_counter()
        result.approve_call_ms.append((t1 - t0) * 1000)
        result.approval_ms.append((t2 - t0) * 1000)
        # The peer: the runbook's two IAM calls, made directly, for a user with no grant.
        other = f"u{plan.approvals + i:04d}"
        t3 = time.perf_counter()
        admin.add_user_to_group(GroupName=WORK, UserName=other)
        admin.tag_user(UserName=other, Tags=[{"Key": WORK, "Value": "2026-01-01T00:00:00Z"}])
        result.raw_iam_ms.append((time.perf_counter() - t3) * 1000)
        admin.remove_user_from_group(GroupName=WORK, UserName=other)
        admin.untag_user(UserName=other, TagKeys=[WORK])
        assert done.grant is not None
        core.grants.release(actor, done.grant.id)


def reconcile(
    core: Core, server: Moto, keys: dict[str, tuple[str, str]], plan: AwsPlan, result: AwsResult
) -> None:
    """Grants for some, members by hand for others, stale tags for more; then reconcile."""
    admin = server.client("iam", keys["admin"])
    now = datetime.now(UTC)
    end = now + timedelta(hours=4)
    for i in range(plan.granted):  # grants as a seed import leaves them: the one write path
        core.import_seed_grant.execute(f"u{i:04d}", WORK, end, "bench")
    tag = end.isoformat().replace("+00:00", "Z").split(".")[0] + "Z"
    for i in range(plan.granted):  # their memberships exist, as the runbook left them
        user = f"u{i:04d}"
        admin.add_user_to_group(GroupName=WORK, UserName=user)
        admin.tag_user(UserName=user, Tags=[{"Key": WORK, "Value": tag}])
    start = plan.granted
    for i in range(start, start + plan.by_hand):
        admin.add_user_to_group(GroupName=WORK, UserName=f"u{i:04d}")
    start += plan.by_hand
    for i in range(start, start + plan.stale):
        admin.tag_user(UserName=f"u{i:04d}", Tags=[{"Key": WORK, "Value": "202601010000"}])
    core.reconciler.run()  # the very first run also looks for seed tags to import; not timed

    for i in range(plan.granted, plan.granted + plan.by_hand):  # drift again, then time it
        admin.add_user_to_group(GroupName=WORK, UserName=f"u{i:04d}")
    for i in range(start, start + plan.stale):
        admin.tag_user(UserName=f"u{i:04d}", Tags=[{"Key": WORK, "Value": "202601010000"}])
    t0 = time.perf_counter()
    report = core.reconciler.run()
    result.first_pass_s = time.perf_counter() - t0
    result.first_pass_fixed = len(report.done)
    for _ in range(plan.clean_runs):
        t0 = time.perf_counter()
        clean = core.reconciler.run()
        result.clean_pass_s.append(time.perf_counter() - t0)
        assert clean.clean, clean.findings
        t0 = time.perf_counter()
        admin.get_group(GroupName=WORK)
        for i in range(plan.users):
            admin.list_user_tags(UserName=f"u{i:04d}")
        result.raw_reads_s.append(time.perf_counter() - t0)


APPROVAL_METHOD = """\
A member files a request; the clock starts when the approver's `approve` is called (in
process: the runbook adds the IAM user to the IAM group and tags them through the `aws_iam`
provider) and stops at the member's first successful `sts:AssumeRole` into the production
role with their own access keys. The peer is the raw IAM floor: the same two IAM calls (add
to group, tag) made directly with boto3."""

RECONCILE_METHOD = """\
The model has N users in IAM; some hold grants, some were added to the work group by hand,
some carry stale TTL tags. The reconciler's pass that fixes all of that, and clean passes,
are timed. The peer is the raw reads any checker must make: the work group's members and
every user's tags, with boto3."""


def sections(result: AwsResult) -> list[Section]:
    approval = Table(
        [
            "n",
            "approval -> AssumeRole allowed p50 / p99 (ms)",
            "the approve call p50 (ms)",
            "peer: the runbook's two IAM calls made directly, p50 (ms)",
            "ratio p50",
        ]
    )
    total, call, raw = (
        Summary.of(result.approval_ms),
        Summary.of(result.approve_call_ms),
        Summary.of(result.raw_iam_ms),
    )
    approval.add(
        str(total.n),
        f"{fmt(total.p50)} / {fmt(total.p99)}",
        fmt(call.p50),
        fmt(raw.p50),
        fmt_ratio(total.p50 / raw.p50 if raw.p50 else float("nan")),
    )
    reconcile_table = Table(
        [
            "users in IAM",
            "pass that fixes drift (s)",
            "fixed",
            "clean pass, median (s)",
            "peer: raw reads (members + every user's tags), median (s)",
            "ratio clean : raw",
        ]
    )
    clean, raw_reads = median(result.clean_pass_s), median(result.raw_reads_s)
    reconcile_table.add(
        f"{result.users:,}",
        fmt(result.first_pass_s),
        str(result.first_pass_fixed),
        fmt(clean),
        fmt(raw_reads),
        fmt_ratio(clean / raw_reads if raw_reads else float("nan")),
    )
    return [
        Section(
            "9. AWS: time from approval to AssumeRole allowed, against moto",
            APPROVAL_METHOD,
            [approval],
            [
                "Against moto_server with IAM policy enforcement on: the member's own "
                "AssumeRole is judged by the group policy, so it is allowed only once the "
                "runbook's membership landed.",
            ],
            key=KEY,
        ),
        Section(
            "10. AWS: the reconciler over many users, against moto",
            RECONCILE_METHOD,
            [reconcile_table],
            [
                "The reconciler reads every work group's members and every user's tags "
                "(one IAM call per user, as any TTL checker must), then fixes what differs "
                "through the same provider calls the runbook uses.",
            ],
            key=KEY,
        ),
    ]
