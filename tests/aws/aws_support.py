"""The AWS tests' world: a moto server process, the model pointed at it, and sekisho on it."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.providers.select import ProviderFromModel
from sekisho.store.db import Database
from support import EXAMPLE_TEXT, assemble_core, free_port

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

    def iam(self) -> Any:
        """An IAM client for setting the world up, before enforcement (any key will do)."""
        return boto3.client(
            "iam",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )


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


def core_on(db_url: str, clock: ManualClock, settings: Settings, model_text: str) -> Core:
    """sekisho with the provider the model names (aws_iam here), the tests' clock and hasher."""
    db = Database(db_url)
    provider = ProviderFromModel(db, clock)
    core = assemble_core(db, settings, provider, clock, (model_text, "aws.yaml"))
    return core
