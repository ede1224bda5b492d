"""STS and IAM for brokered switch-role, over boto3: the real `RoleCredentials` port.

Role credentials come from `sts:AssumeRole`, with the person as source identity and, when a
grant bounds them, a session policy that denies everything after the grant's end. A console
sign-in URL comes from AWS's federation endpoint. When a grant ends early, one inline policy
on each role ("SekishoRevokedSessions") denies the user's sessions issued before the end: the
IAM "revoke older sessions" pattern, scoped to one user by the session name (`user=reqN`).
Whatever AWS refuses reaches the caller as `ProviderFailure`, never as a success.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import datetime, timedelta
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from sekisho.domain.access import ProviderSettings
from sekisho.domain.credentials import IamRole, RoleSessionAsk, SessionKeys
from sekisho.domain.errors import ProviderFailure
from sekisho.domain.timespec import iso
from sekisho.providers.aws import AwsClients

REVOKE_POLICY = "SekishoRevokedSessions"
ROLE_SESSION_CAP = timedelta(hours=12)  # no role session lives longer: older denials go
CONSOLE = "https://console.aws.amazon.com/"


class AwsRoleCredentials:
    def __init__(self) -> None:
        # Clients for the settings last seen: building them (and assuming sekisho's own role)
        # costs a round trip, so they are kept until a model reload changes the settings.
        self._clients: tuple[ProviderSettings, AwsClients] | None = None
        self._lock = threading.Lock()

    def clients(self, aws: ProviderSettings) -> AwsClients:
        with self._lock:
            if self._clients is None or self._clients[0] != aws:
                self._clients = (aws, AwsClients(aws))
            return self._clients[1]

    def issue(self, aws: ProviderSettings, ask: RoleSessionAsk) -> SessionKeys:
        args: dict[str, Any] = {
            "RoleArn": ask.role_arn,
            "RoleSessionName": ask.session_name,
            "DurationSeconds": int(ask.duration.total_seconds()),
            "SourceIdentity": ask.source_identity[:64],
        }
        if ask.not_after is not None:
            args["Policy"] = until_policy(ask.not_after)
        try:
            answer = self.clients(aws).sts().assume_role(**args)
        except (ClientError, BotoCoreError) as exc:
            raise ProviderFailure(
                f"STS refused to issue credentials for {ask.role_arn}: {exc}"
            ) from exc
        creds = answer["Credentials"]
        return SessionKeys(
            access_key_id=creds["AccessKeyId"],
            secret_access_key=creds["SecretAccessKey"],
            session_token=creds["SessionToken"],
            expiration=creds["Expiration"],
        )

    def console_url(self, aws: ProviderSettings, keys: SessionKeys) -> str:
        session = json.dumps(
            {
                "sessionId": keys.access_key_id,
                "sessionKey": keys.secret_access_key,
                "sessionToken": keys.session_token,
            }
        )
        try:
            answer = httpx.get(
                aws.federation_url,
                params={"Action": "getSigninToken", "Session": session},
                timeout=10,
            )
            answer.raise_for_status()
            token = answer.json()["SigninToken"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise ProviderFailure(f"the AWS sign-in endpoint did not answer: {exc}") from exc
        login = httpx.URL(
            aws.federation_url,
            params={
                "Action": "login",
                "Issuer": "sekisho",
                "Destination": CONSOLE,
                "SigninToken": token,
            },
        )
        return str(login)

    def deny_older_sessions(
        self, aws: ProviderSettings, role: IamRole, user: str, cutoff: datetime, now: datetime
    ) -> None:
        iam = self.clients(aws).in_account(role.broker_role_arn).iam()
        deny_older_sessions(iam, role.name, user, cutoff, now)


def until_policy(end: datetime) -> str:
    """A session policy: everything the role allows, until `end`."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {
                    "Sid": "SekishoGrantEnd",
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"DateGreaterThan": {"aws:CurrentTime": iso(end)}},
                },
            ],
        }
    )


def deny_older_sessions(iam: Any, role: str, user: str, cutoff: datetime, now: datetime) -> None:
    """Keep one inline policy on the role with a deny per user; drop denials older than any
    session can be."""
    keep = [
        s
        for s in _revocations(iam, role)
        if s.get("Sid") != statement_id(user) and not _stale(s, now)
    ]
    keep.append(
        {
            "Sid": statement_id(user),
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "DateLessThan": {"aws:TokenIssueTime": iso(cutoff)},
                "StringLike": {"aws:userid": f"*:{user}=*"},
            },
        }
    )
    document = json.dumps({"Version": "2012-10-17", "Statement": keep})
    try:
        iam.put_role_policy(RoleName=role, PolicyName=REVOKE_POLICY, PolicyDocument=document)
    except (ClientError, BotoCoreError) as exc:
        raise ProviderFailure(f"IAM refused to revoke sessions on {role}: {exc}") from exc


def statement_id(user: str) -> str:
    """One statement id per user. Sids allow only letters and digits, so the name's other
    characters are dropped and a digest of the exact name keeps "a.b" apart from "ab"."""
    digest = hashlib.sha256(user.encode()).hexdigest()[:16]
    return "User" + re.sub(r"[^A-Za-z0-9]", "", user)[:80] + digest


def _revocations(iam: Any, role: str) -> list[dict[str, Any]]:
    """The role's revocation statements so far (none before the first)."""
    try:
        current = iam.get_role_policy(RoleName=role, PolicyName=REVOKE_POLICY)["PolicyDocument"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
            return []
        raise ProviderFailure(f"IAM refused to read {role}'s policy: {exc}") from exc
    if isinstance(current, str):
        current = json.loads(current)
    return list(current.get("Statement", []))


def _stale(statement: dict[str, Any], now: datetime) -> bool:
    """A denial every session it denies has outlived (no session lasts past the cap)."""
    before = statement.get("Condition", {}).get("DateLessThan", {}).get("aws:TokenIssueTime")
    if not before:
        return False
    return datetime.fromisoformat(before.replace("Z", "+00:00")) < now - ROLE_SESSION_CAP
