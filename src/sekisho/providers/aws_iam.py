"""The `aws_iam` provider: the seed's runbook on real IAM.

Activating a grant adds the IAM user to the IAM group and tags the user `{group: end}`;
ending removes both. The end is written as the runbook hands it over, in the model's
`provider.tag_format` (`AccessModel.ttl_tag`: the seed's YYYYMMDDhhmm by default, which the
seed's TTL checker reads, or ISO 8601). Every call is idempotent (adding a member twice,
removing one that is gone, untagging a missing tag all succeed), and is reported done only
once IAM answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.orm import Session

from sekisho.domain.errors import ProviderFailure
from sekisho.providers.aws import AwsClients

T = TypeVar("T")


class AwsIamProvider:
    name = "aws_iam"

    def __init__(self, clients: AwsClients) -> None:
        self._iam = clients.iam()

    def add_member(self, user: str, group: str) -> str:
        _call_present(
            f"add {user} to IAM group {group}",
            lambda: self._iam.add_user_to_group(GroupName=group, UserName=user),
        )
        return f"added {user} to IAM group {group}"

    def remove_member(self, user: str, group: str) -> str:
        done = _call_unless_gone(
            f"remove {user} from IAM group {group}",
            lambda: self._iam.remove_user_from_group(GroupName=group, UserName=user),
        )
        return f"removed {user} from IAM group {group}" if done else f"{user} was not in {group}"

    def set_tag(self, user: str, key: str, value: str) -> str:
        _call_present(
            f"tag IAM user {user}",
            lambda: self._iam.tag_user(UserName=user, Tags=[{"Key": key, "Value": value}]),
        )
        return f"tagged IAM user {user} {{{key}: {value}}}"

    def delete_tag(self, user: str, key: str) -> str:
        done = _call_unless_gone(
            f"untag IAM user {user}", lambda: self._iam.untag_user(UserName=user, TagKeys=[key])
        )
        return f"untagged IAM user {user} {key}" if done else f"IAM user {user} is gone"

    def members(self, group: str) -> frozenset[str]:
        def collect() -> frozenset[str]:
            pages = self._iam.get_paginator("get_group").paginate(GroupName=group)
            return frozenset(u["UserName"] for page in pages for u in page["Users"])

        return _call_present(f"list IAM group {group}", collect)

    def tags(self, user: str) -> dict[str, str]:
        def collect() -> dict[str, str]:
            pages = self._iam.get_paginator("list_user_tags").paginate(UserName=user)
            return {t["Key"]: t["Value"] for page in pages for t in page["Tags"]}

        found = _call_unless_gone(f"read the tags of IAM user {user}", collect)
        return found or {}

    def within(self, session: Session) -> None:
        return None  # IAM is not in sekisho's database


class _Gone(Exception):
    pass


def _call(doing: str, action: Callable[[], T]) -> T:
    """Run one IAM call: its result, or a ProviderFailure that says what failed and why."""
    try:
        return action()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "NoSuchEntity":
            raise _Gone(doing) from error
        raise ProviderFailure(f"IAM refused to {doing}: {code} {message}".strip()) from error
    except BotoCoreError as error:
        raise ProviderFailure(f"IAM did not answer to {doing}: {error}") from error


def _call_unless_gone(doing: str, action: Callable[[], T]) -> T | None:
    """For removals and reads: an entity that is gone means there is nothing to do (None)."""
    try:
        return _call(doing, action)
    except _Gone:
        return None


def _call_present(doing: str, action: Callable[[], T]) -> T:
    """For additions: a missing user or group is a failure to report, with its name."""
    try:
        return _call(doing, action)
    except _Gone as gone:
        raise ProviderFailure(f"IAM cannot {doing}: the user or group does not exist") from gone
