"""IAM from the access model: sekisho's own least-privilege policy, and infrastructure as code.

The seed's companion repository writes its groups, group policies and roles by hand. Here
they come from the model: each group may switch only to the roles the model lets it assume
(the work groups to the production roles), every role trusts the identity (jump) account with
MFA for switch-role and sekisho's broker for brokered credentials.
"""

from __future__ import annotations

from typing import Any

from sekisho.domain.access import AccessModel, Group, Role
from sekisho.domain.errors import Conflict

VERSION = "2012-10-17"


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": list(statements)}


def _identity_id(model: AccessModel) -> str:
    name = model.provider.identity_account
    account = model.account(name) if name else None
    return account.aws_account_id if account and account.aws_account_id else "*"


def role_arn(model: AccessModel, role: Role, *, strict: bool = False) -> str:
    """The role's ARN; with an unknown account id, `*` (for policies) or an error (`strict`,
    for calling STS)."""
    account = model.account(role.account)
    account_id = account.aws_account_id if account and account.aws_account_id else None
    if account_id is None and strict:
        raise Conflict(f"account {role.account} has no aws_account_id in the model")
    return f"arn:aws:iam::{account_id or '*'}:role/{role.name}"


def broker_principal(model: AccessModel) -> str:
    """Who sekisho is in AWS: its broker role, or (without one) the identity account."""
    if model.provider.role_arn:
        return model.provider.role_arn
    return f"arn:aws:iam::{_identity_id(model)}:root"


def broker_policy(model: AccessModel) -> dict[str, Any]:
    """The least a sekisho broker needs: membership and tags of the work groups' users, the
    roles it brokers, and the per-role deny that revokes a user's older sessions."""
    home = _identity_id(model)
    work = sorted(g.name for g in model.groups if g.is_work)
    users = sorted(u.name for u in model.users)
    brokered = sorted({role_arn(model, r) for r in _assumable(model)})
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WorkGroupMembership",
            "Effect": "Allow",
            "Action": ["iam:AddUserToGroup", "iam:RemoveUserFromGroup", "iam:GetGroup"],
            "Resource": [f"arn:aws:iam::{home}:group/{g}" for g in work],
        },
        {
            "Sid": "GrantTags",
            "Effect": "Allow",
            "Action": ["iam:TagUser", "iam:UntagUser", "iam:ListUserTags"],
            "Resource": [f"arn:aws:iam::{home}:user/{u}" for u in users],
        },
    ]
    if brokered:
        statements += [
            {
                "Sid": "BrokeredRoleCredentials",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                "Resource": brokered,
            },
            {
                "Sid": "RevokeOlderSessions",
                "Effect": "Allow",
                "Action": ["iam:GetRolePolicy", "iam:PutRolePolicy"],
                "Resource": brokered,
                "Condition": {"StringEquals": {"iam:PolicyName": "SekishoRevokedSessions"}},
            },
        ]
    account_brokers = sorted({a.broker_role_arn for a in model.accounts if a.broker_role_arn})
    if account_brokers:
        statements.append(
            {
                "Sid": "AccountBrokerRoles",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": account_brokers,
            }
        )
    return _policy(*statements)


def _assumable(model: AccessModel) -> list[Role]:
    refs = {ref for g in model.groups for ref in g.permissions.assume}
    return [r for r in model.roles() if r.ref in refs]


MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}


def group_policy(model: AccessModel, group: Group, *, mfa: bool = True) -> dict[str, Any] | None:
    """What a group may switch into, as the seed's group policies: with MFA, nothing more."""
    roles = sorted(role_arn(model, r) for r in model.roles() if r.ref in group.permissions.assume)
    if not roles:
        return None
    statement: dict[str, Any] = {
        "Sid": "SwitchRole",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": roles,
    }
    if mfa:
        statement["Condition"] = MFA
    return _policy(statement)


def trust_policy(model: AccessModel, *, mfa: bool = True) -> dict[str, Any]:
    """People switch from the identity account with MFA; sekisho brokers as itself."""
    people: dict[str, Any] = {
        "Sid": "SwitchRoleWithMfa" if mfa else "SwitchRole",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{_identity_id(model)}:root"},
        "Action": "sts:AssumeRole",
    }
    if mfa:
        people["Condition"] = MFA
    return _policy(
        people,
        {
            "Sid": "SekishoBroker",
            "Effect": "Allow",
            "Principal": {"AWS": broker_principal(model)},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
        },
    )


def iam_documents(model: AccessModel, *, mfa: bool = True) -> dict[str, dict[str, Any]]:
    """Bare policy documents, by file name."""
    documents: dict[str, dict[str, Any]] = {"sekisho-broker.json": broker_policy(model)}
    for group in model.groups:
        policy = group_policy(model, group, mfa=mfa)
        if policy is not None:
            documents[f"group-{group.name}.json"] = policy
    documents["role-trust.json"] = trust_policy(model, mfa=mfa)
    return documents


def cloudformation(model: AccessModel, *, mfa: bool = True) -> dict[str, dict[str, Any]]:
    """One template per account: the identity account's groups and users (standing groups
    with their members, work groups empty), each account's roles."""
    templates: dict[str, dict[str, Any]] = {}
    identity = model.provider.identity_account
    if identity is not None:
        templates[identity] = _identity_template(model, mfa)
    for account in model.accounts:
        if not account.roles:
            continue
        template = templates.setdefault(
            account.name, _template(f"sekisho: roles in {account.name}")
        )
        template.setdefault("Outputs", {})
        for role in account.roles:
            properties: dict[str, Any] = {
                "RoleName": role.name,
                "Description": (role.description or role.ref)[:1000],
                "AssumeRolePolicyDocument": trust_policy(model, mfa=mfa),
                "MaxSessionDuration": int(role.max_session.total_seconds()),
            }
            if role.managed_policies:
                properties["ManagedPolicyArns"] = list(role.managed_policies)
            template["Resources"][_logical(f"Role{role.name}")] = {
                "Type": "AWS::IAM::Role",
                "Properties": properties,
            }
            template["Outputs"][_logical(f"{role.name}Arn")] = {
                "Value": {"Fn::GetAtt": [_logical(f"Role{role.name}"), "Arn"]}
            }
    return templates


def _identity_template(model: AccessModel, mfa: bool) -> dict[str, Any]:
    template = _template("sekisho: groups and users of the identity (jump) account")
    resources = template["Resources"]
    for group in model.groups:
        properties: dict[str, Any] = {"GroupName": group.name}
        policy = group_policy(model, group, mfa=mfa)
        if policy is not None:
            properties["Policies"] = [
                {"PolicyName": "sekisho-switch-role", "PolicyDocument": policy}
            ]
        resources[_logical(f"Group{group.name}")] = {
            "Type": "AWS::IAM::Group",
            "Properties": properties,
        }
    for user in model.users:
        standing = [
            {"Ref": _logical(f"Group{g.name}")} for g in model.standing_groups_of(user.name)
        ]
        properties = {"UserName": user.name}
        if standing:
            properties["Groups"] = standing
        resources[_logical(f"User{user.name}")] = {
            "Type": "AWS::IAM::User",
            "Properties": properties,
        }
    return template


def _template(description: str) -> dict[str, Any]:
    return {"AWSTemplateFormatVersion": "2010-09-09", "Description": description, "Resources": {}}


def _logical(name: str) -> str:
    """A CloudFormation logical id: letters and digits only."""
    return "".join(ch for ch in name if ch.isalnum())[:255]
