"""AWS against a real moto server process on 127.0.0.1, with IAM policy enforcement on.

The IAM world is built from sekisho's own export (`iam_documents`): groups with their
switch-role policies, roles trusting the identity account and the broker, people with access
keys, and a broker user holding exactly `sekisho aws policy`. Then authorisation is switched
on, so every call (sekisho's and the people's) is judged by those policies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.fernet import Fernet

from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.domain.actor import Actor
from sekisho.model import load_text
from sekisho.providers.aws_policies import broker_policy, iam_documents
from sekisho.providers.select import ProviderFromModel
from sekisho.services.core import Core
from sekisho.services.secretbox import SecretBox
from sekisho.store.db import Database
from support import CHEAP_HASHER, EXAMPLE_TEXT, free_port

ACCOUNT = "123456789012"  # moto's account: every account of the model lives in it here
REGION = "us-east-1"
BIN = Path(sys.executable).parent


class Moto:
    """A moto_server child process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(BIN / "moto_server"), "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)

    def post(self, path: str, body: bytes = b"") -> None:
        request = urllib.request.Request(
            f"{self.url}{path}", data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(request, timeout=10).close()

    def reset(self) -> None:
        self.post("/moto-api/reset")
        self.post("/moto-api/reset-auth", b"inf")  # no checks while the world is built

    def enforce(self) -> None:
        self.post("/moto-api/reset-auth", b"0")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    server = Moto()
    yield server
    server.stop()


def aws_model_text(endpoint: str, federation: str | None = None) -> str:
    """The example model on IAM: every account id is moto's; the prod member role may sign
    in to the console (through `federation`, a stand-in for AWS's endpoint)."""
    text = EXAMPLE_TEXT.replace(
        "{ name: Prod_MemberRole,", "{ name: Prod_MemberRole, console: true,"
    )
    for fake in ("111111111111", "222222222222", "333333333333", "444444444444"):
        text = text.replace(fake, ACCOUNT)
    provider = (
        "provider:\n"
        "  type: aws_iam\n"
        f"  region: {REGION}\n"
        f"  endpoint_url: {endpoint}\n"
        "  identity_account: jump\n"
        + (f"  federation_url: {federation}\n" if federation else "")
        + "\n"
    )
    text = text.replace("accounts:\n", provider + "accounts:\n", 1)
    return text.replace("max_session: 1h", "max_session: 12h")


def actions_only(policy: dict[str, Any]) -> dict[str, Any]:
    """`sekisho aws policy` as moto can judge it: moto checks IAM actions against resource
    `*` and evaluates no conditions, so scoped statements would deny everything there. The
    actions stay exactly as exported, so a missing permission still fails these tests; the
    resources and conditions are checked in test_policies.py."""
    statements = [
        {"Effect": s["Effect"], "Action": s["Action"], "Resource": "*"} for s in policy["Statement"]
    ]
    return {"Version": policy["Version"], "Statement": statements}


@dataclass
class World:
    moto: Moto
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # user -> (id, secret)

    def client(self, service: str, user: str = "admin") -> Any:
        key, secret = self.keys[user]
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.moto.url,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{name}"

    def can_assume(self, user: str, role: str) -> bool:
        try:
            self.client("sts", user).assume_role(
                RoleArn=self.role_arn(role), RoleSessionName=f"{user}-probe"
            )
        except self.client("sts", user).exceptions.ClientError:
            return False
        return True

    def members(self, group: str) -> set[str]:
        users = self.client("iam").get_group(GroupName=group)["Users"]
        return {u["UserName"] for u in users}

    def tags(self, user: str) -> dict[str, str]:
        found = self.client("iam").list_user_tags(UserName=user)["Tags"]
        return {t["Key"]: t["Value"] for t in found}


@pytest.fixture
def world(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> World:
    moto.reset()
    model = load_text(aws_model_text(moto.url))
    setup = boto3.client(
        "iam",
        region_name=REGION,
        endpoint_url=moto.url,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
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


def core_on(db_url: str, clock: ManualClock, settings: Settings, model_text: str) -> Core:
    """sekisho with the provider the model names (aws_iam here), the tests' clock and hasher."""
    db = Database(db_url)
    provider = ProviderFromModel(db, clock)
    core = Core(
        db=db,
        settings=settings,
        provider=provider,
        secrets=SecretBox(Fernet.generate_key()),
        clock=clock,
        sleep=lambda _s: None,
        password_hasher=CHEAP_HASHER,
    )
    provider.bind(core.models.model)
    core.models.load(model_text, "aws.yaml", Actor.system("test"))
    return core


@pytest.fixture
def aws_core(db_url: str, clock: ManualClock, world: World, settings: Settings) -> Iterator[Core]:
    """sekisho with the aws_iam provider, against moto."""
    core = core_on(db_url, clock, settings, aws_model_text(world.moto.url))
    yield core
    core.db.dispose()
