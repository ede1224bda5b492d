"""IAM from the model: sekisho's least-privilege policy and the infrastructure-as-code export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aws_support import aws_model_text

from sekisho.model import load_text
from sekisho.providers.aws_policies import broker_policy, cloudformation, iam_documents
from support import EXAMPLE_TEXT

BIN = Path(sys.executable).parent
SEED = load_text(
    EXAMPLE_TEXT.replace("accounts:\n", "provider:\n  identity_account: jump\n\naccounts:\n", 1)
)


def statement(policy: dict, sid: str) -> dict:  # type: ignore[type-arg]
    return next(s for s in policy["Statement"] if s.get("Sid") == sid)


def test_the_broker_may_touch_only_work_groups_model_users_and_brokered_roles() -> None:
    policy = broker_policy(SEED)
    groups = statement(policy, "WorkGroupMembership")
    assert groups["Resource"] == [
        "arn:aws:iam::111111111111:group/ProdLeaderWorkGroup",
        "arn:aws:iam::111111111111:group/ProdMemberWorkGroup",
    ]  # never a standing group: sekisho cannot make anyone a leader
    tags = statement(policy, "GrantTags")
    assert "arn:aws:iam::111111111111:user/member01" in tags["Resource"]
    assert all(":user/" in r for r in tags["Resource"])
    roles = statement(policy, "BrokeredRoleCredentials")
    assert "arn:aws:iam::444444444444:role/Prod_MemberRole" in roles["Resource"]
    assert set(roles["Action"]) == {"sts:AssumeRole", "sts:SetSourceIdentity"}
    revoke = statement(policy, "RevokeOlderSessions")
    assert revoke["Condition"] == {"StringEquals": {"iam:PolicyName": "SekishoRevokedSessions"}}
    actions = {a for s in policy["Statement"] for a in _list(s["Action"])}
    assert not any(a.endswith("*") for a in actions)
    assert "iam:CreateUser" not in actions
    assert "iam:AttachUserPolicy" not in actions


def test_only_work_groups_may_switch_into_production_and_only_with_mfa() -> None:
    documents = iam_documents(SEED)
    member_work = documents["group-ProdMemberWorkGroup.json"]["Statement"][0]
    assert member_work["Resource"] == ["arn:aws:iam::444444444444:role/Prod_MemberRole"]
    assert member_work["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    members = documents["group-MemberGroup.json"]["Statement"][0]["Resource"]
    assert not any("Prod_MemberRole" in r or "Prod_LeaderRole" in r for r in members)
    assert "arn:aws:iam::444444444444:role/Prod_ReadOnlyRole" in members
    assert "group-ChangeApprovalGroup.json" not in documents  # approvers switch nowhere
    trust = documents["role-trust.json"]["Statement"]
    assert trust[0]["Principal"] == {"AWS": "arn:aws:iam::111111111111:root"}


def test_the_cloudformation_export_passes_cfn_lint(tmp_path: Path) -> None:
    templates = cloudformation(SEED)
    assert set(templates) == {"jump", "dev", "stg", "prod"}
    jump = templates["jump"]["Resources"]
    assert jump["GroupProdMemberWorkGroup"]["Type"] == "AWS::IAM::Group"
    assert "Groups" not in jump["Usermember01"]["Properties"] or all(
        ref["Ref"] != "GroupProdMemberWorkGroup"
        for ref in jump["Usermember01"]["Properties"]["Groups"]
    )  # work groups start empty
    prod = templates["prod"]["Resources"]["RoleProdMemberRole"]["Properties"]
    assert prod["MaxSessionDuration"] == 3600
    files = []
    for account, template in templates.items():
        path = tmp_path / f"{account}.json"
        path.write_text(json.dumps(template, indent=2))
        files.append(str(path))
    lint = subprocess.run(
        [str(BIN / "cfn-lint"), *files], capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_cli_writes_the_export_and_prints_the_policy(tmp_path: Path) -> None:
    model = tmp_path / "aws.yaml"
    model.write_text(aws_model_text("http://127.0.0.1:1"))
    out = tmp_path / "out"
    done = subprocess.run(
        [
            str(BIN / "sekisho"),
            "model",
            "export",
            str(model),
            "--format",
            "iam-json",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "sekisho-broker.json").exists()
    printed = subprocess.run(
        [str(BIN / "sekisho"), "aws", "policy", "--model", str(model)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(printed.stdout) == json.loads((out / "sekisho-broker.json").read_text())


def _list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value
