"""The shape of an access-model file, as Pydantic models.

These check one entry at a time (types, formats, ranges, unknown fields). Whether names
refer to things that exist is `sekisho.model.checks`. Every value rule raises a
`PydanticCustomError` whose type is the stable rule id reported to the user.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from sekisho.domain.access import NotifyEvent
from sekisho.domain.errors import InvalidInput
from sekisho.domain.text import (
    LONG_TEXT,
    ROLE_REF,
    SHORT_TEXT,
    check_name,
    check_text,
    is_email,
)
from sekisho.domain.timespec import format_duration, parse_duration, zone

T = TypeVar("T")

SUPPORTED_VERSION = 1
ROLE_SESSION_MIN = timedelta(minutes=15)
ROLE_SESSION_MAX = timedelta(hours=12)

_AWS_ACCOUNT_ID = re.compile(r"\d{12}")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def rule_error(rule: str, message: str) -> PydanticCustomError:
    # The message goes through the context so braces in user input are not format fields.
    return PydanticCustomError(rule, "{message}", {"message": message})


def _domain(call: Callable[[], T]) -> T:
    """Run a domain check; its rule id and sentence become the Pydantic error."""
    try:
        return call()
    except InvalidInput as exc:
        problem = exc.problems[0]
        raise rule_error(problem.rule, problem.message) from exc


def _name(value: str) -> str:
    return _domain(lambda: check_name("name", value))


def _short_text(value: str) -> str:
    return _domain(lambda: check_text("text", value, max_length=SHORT_TEXT))


def _long_text(value: str) -> str:
    return _domain(lambda: check_text("text", value, max_length=LONG_TEXT, multiline=True))


def _duration(value: object) -> object:
    if isinstance(value, str):
        return _domain(lambda: parse_duration(value, "duration"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise rule_error(
            "duration_format", f"{value} has no unit: write a duration like {value}m or 1h"
        )
    raise rule_error("wrong_type", "must be a duration like 2h30m, 90m or 1d")


_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_POLICY_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]{1,512}")


def _aws_region(value: str) -> str:
    if not _AWS_REGION.fullmatch(value):
        raise rule_error("aws_region_format", f"{value[:40]!r} is not an AWS region name")
    return value


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/$.?#][^\s]{0,500}", value):
        raise rule_error("url_format", f"{value[:60]!r} is not an http(s) URL")
    return value


def _role_arn(value: str) -> str:
    if not _ROLE_ARN.fullmatch(value):
        raise rule_error("role_arn_format", f"{value[:80]!r} is not an IAM role ARN")
    return value


def _policy_arn(value: str) -> str:
    if not _POLICY_ARN.fullmatch(value):
        raise rule_error("policy_arn_format", f"{value[:80]!r} is not an IAM policy ARN")
    return value


def _role_session(value: timedelta) -> timedelta:
    if not ROLE_SESSION_MIN <= value <= ROLE_SESSION_MAX:
        raise rule_error(
            "role_session_range",
            f"a role session lasts {format_duration(ROLE_SESSION_MIN)} to "
            f"{format_duration(ROLE_SESSION_MAX)} (as AWS allows), not {format_duration(value)}",
        )
    return value


def _timezone(value: str) -> str:
    _domain(lambda: zone(value))
    return value


def _version(value: int) -> int:
    if value != SUPPORTED_VERSION:
        raise rule_error(
            "unsupported_version",
            f"this sekisho reads access models of version {SUPPORTED_VERSION}, not {value}",
        )
    return value


def _aws_account_id(value: str) -> str:
    if not _AWS_ACCOUNT_ID.fullmatch(value):
        raise rule_error(
            "aws_account_id_format", f"{value[:40]!r} is not an AWS account id: use 12 digits"
        )
    return value


def is_dns_name(value: str) -> bool:
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    return all(_DNS_LABEL.fullmatch(label) for label in name.split("."))


def _dns_name(value: str) -> str:
    if not is_dns_name(value):
        raise rule_error(
            "dns_name_format",
            f"{value[:60]!r} is not a DNS host name: dot-separated labels of letters, digits "
            "and hyphens, each at most 63 characters",
        )
    return value


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not is_dns_name(value):
            raise rule_error(
                "host_format", f"{value[:60]!r} is neither an IP address nor a DNS host name"
            ) from None
    return value


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise rule_error("port_range", f"{value} is out of range: use 1 to 65535")
    return value


def _email(value: str) -> str:
    if not is_email(value):
        raise rule_error("email_format", f"{value[:60]!r} is not an e-mail address")
    return value


def _role_ref(value: str) -> str:
    if not ROLE_REF.fullmatch(value):
        raise rule_error(
            "role_ref_format",
            f"{value[:80]!r} is not a role reference: "
            "write ACCOUNT/ROLE, e.g. prod/Prod_MemberRole",
        )
    return value


def _pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise rule_error(
            "invalid_pattern", f"{value[:80]!r} is not a regular expression: {exc}"
        ) from None
    return value


def _slack_id(rule: str, kinds: str) -> Callable[[str], str]:
    """A Slack ID (channel C/G/D..., user U/W...): what Slack's API takes, not a #name."""
    shape = re.compile(rf"[{kinds}][A-Z0-9]{{6,20}}")

    def check(value: str) -> str:
        if not shape.fullmatch(value):
            raise rule_error(
                rule,
                f"{value[:40]!r} is not a Slack ID (starts with {' or '.join(kinds)}, then "
                "capitals and digits; Slack shows it in the channel's or person's details)",
            )
        return value

    return check


def _pagerduty_id(value: str) -> str:
    if not re.fullmatch(r"P[A-Z0-9]{5,13}", value):
        raise rule_error(
            "pagerduty_id_format",
            f"{value[:40]!r} is not a PagerDuty schedule ID (P and capitals or digits, as in "
            "the schedule's URL: PI7DH85)",
        )
    return value


def _min_approvals(value: int) -> int:
    if value < 1:
        raise rule_error("min_approvals_range", f"must be at least 1, not {value}")
    return value


def _non_empty(value: list[T]) -> list[T]:
    if not value:
        raise rule_error("required", "list at least one group")
    return value


Name = Annotated[str, AfterValidator(_name)]
ShortText = Annotated[str, AfterValidator(_short_text)]
LongText = Annotated[str, AfterValidator(_long_text)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
RoleSession = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_role_session)]
TimeZone = Annotated[str, AfterValidator(_timezone)]
Version = Annotated[int, AfterValidator(_version)]
AwsAccountId = Annotated[str, AfterValidator(_aws_account_id)]
DnsName = Annotated[str, AfterValidator(_dns_name)]
Host = Annotated[str, AfterValidator(_host)]
Port = Annotated[int, AfterValidator(_port)]
Email = Annotated[str, AfterValidator(_email)]
AwsRegion = Annotated[str, AfterValidator(_aws_region)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
RoleArn = Annotated[str, AfterValidator(_role_arn)]
PolicyArn = Annotated[str, AfterValidator(_policy_arn)]
RoleRef = Annotated[str, AfterValidator(_role_ref)]
Pattern = Annotated[str, AfterValidator(_pattern)]
MinApprovals = Annotated[int, AfterValidator(_min_approvals)]
SlackChannelId = Annotated[str, AfterValidator(_slack_id("slack_channel_format", "CGD"))]
SlackUserId = Annotated[str, AfterValidator(_slack_id("slack_user_format", "UW"))]
PagerDutyId = Annotated[str, AfterValidator(_pagerduty_id)]
GroupNames = Annotated[list[Name], AfterValidator(_non_empty)]


class Doc(BaseModel):
    """Strict (no coercion: `"5"` is not 5, `yes` is not a name), closed (typos are errors)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        # `roles:` with nothing after it reads as null; take it as "not given".
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class SettingsDoc(Doc):
    timezone: TimeZone = "UTC"
    approval_timeout: Duration = timedelta(days=3)


class RoleDoc(Doc):
    name: Name
    description: LongText = ""
    max_session: RoleSession = timedelta(hours=1)
    console: bool = False
    managed_policies: list[PolicyArn] = []


class ProviderDoc(Doc):
    type: Literal["local", "aws_iam"] = "local"
    region: AwsRegion | None = None
    endpoint_url: HttpUrl | None = None
    role_arn: RoleArn | None = None
    identity_account: Name | None = None
    reconcile_every: Duration = timedelta(minutes=15)
    federation_url: HttpUrl = "https://signin.aws.amazon.com/federation"
    tag_format: Literal["seed", "iso"] | None = None  # None: seed with aws_iam, iso with local


class AccountDoc(Doc):
    name: Name
    description: LongText = ""
    aws_account_id: AwsAccountId | None = None
    roles: list[RoleDoc] = []
    broker_role_arn: RoleArn | None = None


class TargetDoc(Doc):
    name: Name
    host: Host
    port: Port
    account: Name | None = None
    dns_name: DnsName | None = None
    protocol: Literal["https", "http", "tcp"] = "tcp"
    description: LongText = ""
    idle_timeout: Duration = timedelta(minutes=15)
    max_session: Duration = timedelta(hours=8)


class UserDoc(Doc):
    name: Name
    display_name: ShortText = ""
    email: Email | None = None
    slack_id: SlackUserId | None = None  # else their Slack account is matched by e-mail


class PermissionsDoc(Doc):
    assume: list[RoleRef] = []
    connect: list[Name] = []
    approve: list[Name] = []
    audit: bool = False
    lock: bool = False  # may place and remove locks (admins may too)
    admin: bool = False


class GroupDoc(Doc):
    name: Name
    kind: Literal["standing", "work"]
    description: LongText = ""
    members: list[Name] = []
    # Members also taken from the identity provider: people in any of these IdP groups (the
    # SCIM directory's groups, or the OpenID groups claim at their last sign-in).
    idp_groups: list[ShortText] = []
    permissions: PermissionsDoc = PermissionsDoc()


class EligibilityDoc(Doc):
    requesters: GroupNames
    groups: GroupNames


class OnCallDoc(Doc):
    """The level passes by itself while the requester is on call in this PagerDuty schedule
    (at one of `escalation_levels`; none given: at any level)."""

    on_call: PagerDutyId
    escalation_levels: list[Annotated[int, Field(ge=1, le=20)]] = []


class ApprovalDoc(Doc):
    approvers: Name
    min_approvals: MinApprovals = 1
    auto_approve: OnCallDoc | None = None


class ChangeSectionDoc(Doc):
    name: Name
    title: ShortText
    required: bool = True


STEP_UP_WITHIN_MIN = timedelta(minutes=1)
STEP_UP_WITHIN_MAX = timedelta(hours=12)


def _step_up_within(value: timedelta) -> timedelta:
    if not STEP_UP_WITHIN_MIN <= value <= STEP_UP_WITHIN_MAX:
        raise rule_error(
            "step_up_within_range",
            f"a step-up is fresh for {format_duration(STEP_UP_WITHIN_MIN)} to "
            f"{format_duration(STEP_UP_WITHIN_MAX)}, not {format_duration(value)}",
        )
    return value


def _some_act(value: list[T]) -> list[T]:
    if not value:
        raise rule_error("required", "name at least one act: approve, request")
    return value


class StepUpDoc(Doc):
    """A fresh strong factor before the acts named in `to` (approving, by default)."""

    within: Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_step_up_within)]
    factor: Literal["passkey", "mfa"]
    to: Annotated[list[Literal["approve", "request"]], AfterValidator(_some_act)] = ["approve"]


class EmergencyDoc(Doc):
    """Break-glass: an eligible requester grants themselves access at once, with a reason and
    a ticket, for at most `max_duration`; `notify` groups hear of it; an approver reviews it
    within `review_within` of the grant's start."""

    max_duration: Duration
    review_within: Duration
    notify: list[Name] = []
    ticket: Name = "ticket"  # the template parameter an emergency request must fill


EXTEND_TIMES_MAX = 100


def _extend_times(value: int) -> int:
    if not 1 <= value <= EXTEND_TIMES_MAX:
        raise rule_error(
            "extend_times_range",
            f"extend.times is how many extensions need no approval: 1 to {EXTEND_TIMES_MAX}, "
            f"not {value}",
        )
    return value


class ExtendDoc(Doc):
    """Self-service extensions: up to `times` of them, adding at most `total` in all."""

    times: Annotated[int, AfterValidator(_extend_times)]
    total: Duration


class ParameterDoc(Doc):
    name: Name
    description: LongText = ""
    required: bool = False
    pattern: Pattern | None = None
    jira: bool = False  # the value is a Jira issue key: it must exist and be open to file


class TemplateDoc(Doc):
    name: Name
    action: Literal["grant", "remove"]
    description: LongText = ""
    eligibility: list[EligibilityDoc] = []
    approval: list[ApprovalDoc] = []
    max_duration: Duration = timedelta(hours=8)
    auto_approve: bool = False
    change_info: list[ChangeSectionDoc] = []
    parameters: list[ParameterDoc] = []
    step_up: StepUpDoc | None = None
    chat_approval: bool = True  # false: Slack's button opens the request's page instead
    emergency: EmergencyDoc | None = None
    extend: ExtendDoc | None = None


# -- notifications ---------------------------------------------------------------------------

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_SNS_TOPIC_ARN = re.compile(
    r"arn:aws[a-z-]*:sns:[a-z]{2}(-[a-z]+)+-\d{1,2}:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?"
)
NOTIFY_TIMEOUT_MIN = timedelta(seconds=1)
NOTIFY_TIMEOUT_MAX = timedelta(seconds=60)


def _env_name(value: str) -> str:
    # Never echo the value: someone may have pasted the secret itself here.
    if not _ENV_NAME.fullmatch(value):
        raise rule_error(
            "env_name_format",
            "must be the name of an environment variable holding the secret (letters, digits "
            "and _, e.g. SEKISHO_WEBHOOK_KEY), never the secret itself",
        )
    return value


def _sns_topic_arn(value: str) -> str:
    if not _SNS_TOPIC_ARN.fullmatch(value):
        raise rule_error(
            "sns_topic_arn_format",
            f"{value[:80]!r} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT_ID:NAME)",
        )
    return value


def _notify_timeout(value: timedelta) -> timedelta:
    if not NOTIFY_TIMEOUT_MIN <= value <= NOTIFY_TIMEOUT_MAX:
        raise rule_error(
            "timeout_range",
            f"a channel's timeout is {format_duration(NOTIFY_TIMEOUT_MIN)} to "
            f"{format_duration(NOTIFY_TIMEOUT_MAX)}, not {format_duration(value)}",
        )
    return value


def _event(value: str) -> str:
    known = [e.value for e in NotifyEvent]
    if value != "*" and value not in known:
        close = difflib.get_close_matches(value, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f" (events: {', '.join(known)}, *)"
        raise rule_error("unknown_event", f"sekisho sends no event {value[:60]!r}{hint}")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
SnsTopicArn = Annotated[str, AfterValidator(_sns_topic_arn)]
NotifyTimeout = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_notify_timeout)]
EventName = Annotated[str, AfterValidator(_event)]


class ChannelDoc(Doc):
    """One flat mapping for every type; which fields a type takes is checked in `checks`."""

    name: Name
    type: Literal["webhook", "slack", "slack_app", "email", "sns"]
    description: LongText = ""
    timeout: NotifyTimeout = timedelta(seconds=10)
    url: HttpUrl | None = None
    url_env: EnvName | None = None
    secret_env: EnvName | None = None
    ca_file: ShortText | None = None
    host: Host | None = None
    port: Port = 587
    sender: Email | None = None
    to: list[Email] = []
    username: ShortText | None = None
    password_env: EnvName | None = None
    starttls: bool = True
    topic_arn: SnsTopicArn | None = None  # its region is the one published to
    endpoint_url: HttpUrl | None = None
    # slack_app: a Slack app's bot posts to `slack_channel` (its ID) with buttons to decide.
    slack_channel: SlackChannelId | None = None
    bot_token_env: EnvName | None = None
    signing_secret_env: EnvName | None = None
    # Accepted by the shape only to be refused by name (`secret_in_model`): secrets belong in
    # the environment, and the model names the variable.
    secret: Any = None
    password: Any = None
    token: Any = None


class RouteDoc(Doc):
    # Required, but defaulted here: a route with one mistyped event is still checked for its
    # channels and templates; `checks` reports a whole route that lists none.
    events: list[EventName] = []
    channels: list[Name] = []
    templates: list[Name] = []


class NotificationsDoc(Doc):
    """Channels and routes stay raw here and are validated entry by entry, like sections."""

    remind_before: Duration = timedelta(minutes=15)
    channels: list[Any] = []
    routes: list[Any] = []


# -- shared signals --------------------------------------------------------------------------


class SignalReceiverDoc(Doc):
    """The one SSF transmitter sekisho believes. `lock_for`'s range is checked in `checks`."""

    issuer: HttpUrl
    jwks_uri: HttpUrl  # https, or http to loopback: checked in `checks`
    audience: ShortText | None = None
    token_env: EnvName | None = None
    on_session_revoked: Literal["lock", "ignore"] = "lock"
    on_credential_change: Literal["lock", "ignore"] = "lock"
    lock_for: Duration | None = None


class SharedSignalsDoc(Doc):
    receive: SignalReceiverDoc | None = None


# -- identity --------------------------------------------------------------------------------


class OidcDoc(Doc):
    """The company's OpenID provider. Transport and scopes are checked in `checks`."""

    issuer: HttpUrl
    client_id: ShortText
    client_secret_env: EnvName | None = None
    scopes: list[ShortText] = ["openid", "profile", "email"]
    username_claim: ShortText = "preferred_username"
    groups_claim: ShortText | None = None
    display_name: ShortText = ""
    # Accepted by the shape only to be refused by name (`secret_in_model`).
    client_secret: Any = None


class AdmitDoc(Doc):
    idp_groups: list[ShortText] = []


class IdentityDoc(Doc):
    oidc: OidcDoc | None = None
    # Who else is a user: people in these IdP groups (SCIM groups or the groups claim).
    admit: AdmitDoc = AdmitDoc()


class JiraDoc(Doc):
    url: HttpUrl  # the site, e.g. https://example.atlassian.net
    token_env: EnvName  # an API token (Jira Cloud, with user_env) or a personal access token
    user_env: EnvName | None = None  # Jira Cloud: the account's e-mail; none: a bearer PAT


class TicketsDoc(Doc):
    jira: JiraDoc | None = None


class PagerDutyDoc(Doc):
    token_env: EnvName  # a REST API key (read-only is enough)
    api_url: HttpUrl = "https://api.pagerduty.com"
    ca_file: ShortText | None = None  # trust this CA (PEM) instead of the system's (a proxy)


class OnCallSourcesDoc(Doc):
    pagerduty: PagerDutyDoc | None = None


class ModelDoc(Doc):
    """The top level. Sections stay raw here and are validated entry by entry, so one broken
    entry does not hide the cross-reference problems of all the others."""

    version: Version
    settings: SettingsDoc = SettingsDoc()
    provider: ProviderDoc = ProviderDoc()
    accounts: list[Any] = []
    targets: list[Any] = []
    users: list[Any] = []
    groups: list[Any] = []
    templates: list[Any] = []
    notifications: NotificationsDoc = NotificationsDoc()
    shared_signals: SharedSignalsDoc = SharedSignalsDoc()
    identity: IdentityDoc = IdentityDoc()
    tickets: TicketsDoc = TicketsDoc()
    on_call: OnCallSourcesDoc = OnCallSourcesDoc()


SECTIONS: dict[str, type[Doc]] = {
    "accounts": AccountDoc,
    "targets": TargetDoc,
    "users": UserDoc,
    "groups": GroupDoc,
    "templates": TemplateDoc,
}
