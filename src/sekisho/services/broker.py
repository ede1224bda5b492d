"""Switch role, brokered: role credentials from STS, only while the decision service says yes.

The seed has people switch role themselves once IAM lets them; removing them from the group
then does nothing to credentials already issued (up to the role's session length). sekisho
asks STS for them on the user's behalf instead: the session name carries the user and the
request, the credentials expire no later than the grant (a session policy denies everything
after the grant's end, since STS will not issue less than 15 minutes), and when a grant ends
early the role's older sessions of that user are denied (the IAM "revoke older sessions"
pattern, scoped to the user).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from sekisho.domain.access import ProviderKind, ProviderSettings, Verb
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Conflict, Forbidden, InvalidInput, ProviderFailure
from sekisho.domain.timespec import format_duration, iso
from sekisho.providers.aws import AwsClients
from sekisho.providers.aws_policies import role_arn
from sekisho.services.audit import AuditEvent
from sekisho.store.tables import GrantRow

if TYPE_CHECKING:
    from sekisho.services.core import Core

STS_MINIMUM = timedelta(minutes=15)
REVOKE_POLICY = "SekishoRevokedSessions"
ROLE_SESSION_CAP = timedelta(hours=12)  # no role session lives longer: older denials go


class RoleCredentials(BaseModel):
    """What STS issued, as the API returns it (secrets: never logged, never cached)."""

    model_config = ConfigDict(frozen=True)

    role_arn: str
    session_name: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    via: str
    console_url: str | None = None


def session_name(user: str, request_id: int | None) -> str:
    """`user=reqN`: in CloudTrail and in aws:userid, so a revocation can single it out.

    `=` cannot appear in a user name, so `*:user=*` matches this user's sessions only.
    """
    suffix = f"req{request_id}" if request_id else "standing"
    return f"{user}={suffix}"[:64]


class CredentialBroker:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._clients: tuple[ProviderSettings, AwsClients] | None = None
        self._lock = threading.Lock()

    def clients(self, settings: ProviderSettings) -> AwsClients:
        with self._lock:
            if self._clients is None or self._clients[0] != settings:
                self._clients = (settings, AwsClients(settings))
            return self._clients[1]

    def assume(
        self, actor: Actor, ref: str, duration: timedelta | None = None, console: bool = False
    ) -> RoleCredentials:
        core = self._core
        model = core.models.model()
        role = model.role(ref)
        if role is None:
            raise InvalidInput.one("role", "unknown_role", f"no role {ref[:80]!r}")
        if model.provider.kind is not ProviderKind.AWS_IAM:
            raise Conflict("role credentials need the aws_iam provider in the access model")
        if console and not role.console:
            raise Forbidden(f"{ref} does not allow console sign-in (console: true in the model)")
        decision = core.authz.check(actor, actor.name, Verb.ASSUME, ref)
        if not decision.allowed:
            raise Forbidden(decision.reason)
        now = core.now()
        lifetime = min(duration or role.max_session, role.max_session)
        policy = None
        request_id = None
        if decision.grant_end is not None:
            # Never outlive the grant: as short as STS allows, and a session policy for the rest.
            lifetime = min(lifetime, decision.grant_end - now)
            policy = _until_policy(decision.grant_end)
            request_id = self._request_of(decision.grant_id)
        lifetime = max(lifetime, STS_MINIMUM)
        arn = role_arn(model, role, strict=True)
        name = session_name(actor.name, request_id)
        args: dict[str, Any] = {
            "RoleArn": arn,
            "RoleSessionName": name,
            "DurationSeconds": int(lifetime.total_seconds()),
            "SourceIdentity": actor.name[:64],
        }
        if policy is not None:
            args["Policy"] = policy
        try:
            answer = self.clients(model.provider).sts().assume_role(**args)
        except (ClientError, BotoCoreError) as exc:
            raise ProviderFailure(f"STS refused to issue credentials for {ref}: {exc}") from exc
        creds = answer["Credentials"]
        issued = RoleCredentials(
            role_arn=arn,
            session_name=name,
            access_key_id=creds["AccessKeyId"],
            secret_access_key=creds["SecretAccessKey"],
            session_token=creds["SessionToken"],
            expiration=creds["Expiration"],
            via=decision.reason,
        )
        if console:
            issued = self._with_console(issued, model.provider.federation_url)
        with core.db.write() as s:
            core.audit(
                s,
                AuditEvent(
                    "credentials.issued",
                    actor.name,
                    actor.source,
                    subject=actor.name,
                    grant_id=decision.grant_id,
                    request_id=request_id,
                    object=ref,
                    detail={
                        "role": arn,
                        "via": decision.reason[:200],
                        "expires": iso(issued.expiration),
                        "output": f"session {name} for {format_duration(lifetime)}",
                    },
                ),
            )
        return issued

    def _request_of(self, grant_id: int | None) -> int | None:
        if grant_id is None:
            return None
        with self._core.db.read() as s:
            grant = s.get(GrantRow, grant_id)
            return grant.request_id if grant else None

    @staticmethod
    def _with_console(creds: RoleCredentials, federation_url: str) -> RoleCredentials:
        """An AWS console sign-in URL for these credentials (the federation endpoint)."""
        session = json.dumps(
            {
                "sessionId": creds.access_key_id,
                "sessionKey": creds.secret_access_key,
                "sessionToken": creds.session_token,
            }
        )
        try:
            answer = httpx.get(
                federation_url,
                params={"Action": "getSigninToken", "Session": session},
                timeout=10,
            )
            answer.raise_for_status()
            token = answer.json()["SigninToken"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise ProviderFailure(f"the AWS sign-in endpoint did not answer: {exc}") from exc
        login = httpx.URL(
            federation_url,
            params={
                "Action": "login",
                "Issuer": "sekisho",
                "Destination": "https://console.aws.amazon.com/",
                "SigninToken": token,
            },
        )
        return creds.model_copy(update={"console_url": str(login)})

    # -- when a grant ends early ----------------------------------------------------------

    def revoke_role_sessions(self, user: str, group: str, cutoff: datetime) -> list[str]:
        """Deny, on every role the group could assume, `user`'s sessions issued before
        `cutoff`. Other people's sessions are untouched. Returns what was done."""
        core = self._core
        model = core.models.model()
        if model.provider.kind is not ProviderKind.AWS_IAM:
            return []
        found = model.group(group)
        if found is None:
            return []
        done = []
        base = self.clients(model.provider)
        for ref in sorted(found.permissions.assume):
            role = model.role(ref)
            account = model.account(role.account) if role else None
            if role is None or account is None:
                continue
            iam = base.in_account(account.broker_role_arn).iam()
            _deny_older_sessions(iam, role.name, user, cutoff, core.now())
            done.append(f"denied {user}'s sessions of {ref} issued before {iso(cutoff)}")
        return done


def _until_policy(end: datetime) -> str:
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


def _sid(user: str) -> str:
    """One statement id per user. Sids allow only letters and digits, so the name's other
    characters are dropped and a digest of the exact name keeps "a.b" apart from "ab"."""
    digest = hashlib.sha256(user.encode()).hexdigest()[:16]
    return "User" + re.sub(r"[^A-Za-z0-9]", "", user)[:80] + digest


def _deny_older_sessions(iam: Any, role: str, user: str, cutoff: datetime, now: datetime) -> None:
    """Keep one inline policy on the role with a deny per user; drop denials older than any
    session can be."""
    try:
        current = iam.get_role_policy(RoleName=role, PolicyName=REVOKE_POLICY)["PolicyDocument"]
        if isinstance(current, str):
            current = json.loads(current)
        statements = list(current.get("Statement", []))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
            raise ProviderFailure(f"IAM refused to read {role}'s policy: {exc}") from exc
        statements = []
    keep = []
    for statement in statements:
        issued_before = statement.get("Condition", {}).get("DateLessThan", {})
        before = issued_before.get("aws:TokenIssueTime", "")
        stale = before and datetime.fromisoformat(before.replace("Z", "+00:00")) < (
            now - ROLE_SESSION_CAP
        )
        if statement.get("Sid") != _sid(user) and not stale:
            keep.append(statement)
    keep.append(
        {
            "Sid": _sid(user),
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
