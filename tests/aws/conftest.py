"""AWS against a real moto server process on 127.0.0.1, with IAM policy enforcement on.

The IAM world is built from sekisho's own export (`iam_documents`): groups with their
switch-role policies, roles trusting the identity account and the broker, people with access
keys, and a broker user holding exactly `sekisho aws policy`. Then authorisation is switched
on, so every call (sekisho's and the people's) is judged by those policies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_support import Moto, World, actions_only, aws_model_text, core_on

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.model import load_text
from sekisho.providers.aws_policies import broker_policy, iam_documents


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    server = Moto()
    yield server
    server.stop()


@pytest.fixture
def world(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> World:
    moto.reset()
    model = load_text(aws_model_text(moto.url))
    setup = moto.iam()
    world = World(moto)

    def person(name: str, policy: dict[str, Any] | None = None) -> None:
        setup.create_user(UserName=name)
        if policy is not None:
            setup.put_user_policy(
                UserName=name, PolicyName="policy", PolicyDocument=json.dumps(policy)
            )
        key = setup.create_access_key(UserName=name)["AccessKey"]
        world.keys[name] = (key["AccessKeyId"], key["SecretAccessKey"])

    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    person("admin", everything)  # a human operator, for changes "by hand"
    person("sekisho-broker", actions_only(broker_policy(model)))  # `sekisho aws policy`
    documents = iam_documents(model, mfa=False)  # moto does not evaluate MFA conditions
    for group in model.groups:
        setup.create_group(GroupName=group.name)
        policy = documents.get(f"group-{group.name}.json")
        if policy is not None:
            setup.put_group_policy(
                GroupName=group.name, PolicyName="switch-role", PolicyDocument=json.dumps(policy)
            )
    for user in model.users:
        person(user.name)
        for group in model.standing_groups_of(user.name):
            setup.add_user_to_group(GroupName=group.name, UserName=user.name)
    trust_document = documents["role-trust.json"]
    for statement in trust_document["Statement"]:
        statement["Principal"] = {"AWS": "*"}  # moto matches only user ARNs or *
    trust = json.dumps(trust_document)
    for role in model.roles():
        setup.create_role(RoleName=role.name, AssumeRolePolicyDocument=trust)
    moto.enforce()
    key, secret = world.keys["sekisho-broker"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return world


@pytest.fixture
def aws_core(db_url: str, clock: ManualClock, world: World, settings: Settings) -> Iterator[Core]:
    """sekisho with the aws_iam provider, against moto."""
    core = core_on(db_url, clock, settings, aws_model_text(world.moto.url))
    yield core
    core.db.dispose()
