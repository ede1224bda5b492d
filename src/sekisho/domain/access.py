"""The access model: who exists, what can be reached, who may ask for what.

Pure, immutable values. `sekisho.model` builds an `AccessModel` from YAML and checks every
cross-reference, so code here may assume references resolve.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sekisho.domain.shared_signals import SharedSignals
from sekisho.domain.sso import IdentitySettings
from sekisho.domain.step_up import StepUpAct, StepUpRule
from sekisho.domain.timespec import iso, seed_tag, zone


class GroupKind(StrEnum):
    STANDING = "standing"  # holds people permanently
    WORK = "work"  # empty by default; filled only by approved requests


class TemplateAction(StrEnum):
    GRANT = "grant"  # the seed's AddUserToGroup
    REMOVE = "remove"  # the seed's RemoveUserFromGroup: leave a work group early


class Verb(StrEnum):
    """What a decision is asked about."""

    ASSUME = "assume"  # switch into a role: ACCOUNT/ROLE
    CONNECT = "connect"  # forward to a target through the gateway


class Protocol(StrEnum):
    HTTPS = "https"
    HTTP = "http"
    TCP = "tcp"


@dataclass(frozen=True)
class Role:
    account: str
    name: str
    description: str = ""
    max_session: timedelta = timedelta(hours=1)
    console: bool = False  # `sekisho assume-role --console` may sign in to the AWS console
    managed_policies: tuple[str, ...] = ()  # policy ARNs, for `sekisho model export`

    @property
    def ref(self) -> str:
        return f"{self.account}/{self.name}"


@dataclass(frozen=True)
class Account:
    name: str
    description: str = ""
    aws_account_id: str | None = None
    roles: tuple[Role, ...] = ()
    # A role sekisho assumes for IAM changes in this account (revoking role sessions). Without
    # it, sekisho's own credentials are used, which suits roles in sekisho's own account.
    broker_role_arn: str | None = None


@dataclass(frozen=True)
class Target:
    """A network endpoint reachable only through the gateway."""

    name: str
    host: str
    port: int
    account: str | None = None
    dns_name: str | None = None
    protocol: Protocol = Protocol.TCP
    description: str = ""
    idle_timeout: timedelta = timedelta(minutes=15)
    max_session: timedelta = timedelta(hours=8)


@dataclass(frozen=True)
class Permissions:
    assume: frozenset[str] = frozenset()  # role refs "account/role"
    connect: frozenset[str] = frozenset()  # target names
    approve: frozenset[str] = frozenset()  # template names
    audit: bool = False
    lock: bool = False  # place and remove locks (`domain.locks`)
    admin: bool = False

    def allows(self, verb: Verb, obj: str) -> bool:
        granted = self.assume if verb is Verb.ASSUME else self.connect
        return obj in granted


@dataclass(frozen=True)
class Group:
    name: str
    kind: GroupKind
    description: str = ""
    members: frozenset[str] = frozenset()
    permissions: Permissions = field(default_factory=Permissions)
    idp_groups: frozenset[str] = frozenset()  # case-folded IdP group names it takes members from

    @property
    def is_work(self) -> bool:
        return self.kind is GroupKind.WORK


@dataclass(frozen=True)
class OnCall:
    """A level that passes by itself while the requester is on call in a PagerDuty schedule."""

    schedule: str  # the schedule's ID
    escalation_levels: frozenset[int] = frozenset()  # none: at any level


@dataclass(frozen=True)
class PagerDutySettings:
    token_env: str
    api_url: str = "https://api.pagerduty.com"
    ca_file: str | None = None


@dataclass(frozen=True)
class ApprovalLevel:
    approvers: str  # group name
    min_approvals: int = 1
    on_call: OnCall | None = None


@dataclass(frozen=True)
class Eligibility:
    """Members of `requesters` may request membership of `groups`."""

    requesters: frozenset[str]
    groups: frozenset[str]


@dataclass(frozen=True)
class ChangeSection:
    """A free-text section of change information (the seed's target, impact, rollback...)."""

    name: str
    title: str
    required: bool = True


@dataclass(frozen=True)
class Parameter:
    """An extra named value a request must or may carry, e.g. a change ticket."""

    name: str
    description: str = ""
    required: bool = False
    pattern: str | None = None  # a full-match regular expression
    jira: bool = False  # names a Jira issue that must exist and be open


@dataclass(frozen=True)
class JiraSettings:
    """Where tickets are checked. Secrets stay in the environment: only their names here."""

    url: str
    token_env: str
    user_env: str | None = None  # Jira Cloud: basic auth as this e-mail; none: a bearer PAT


@dataclass(frozen=True)
class Emergency:
    """Break-glass on a template: the requester grants themselves access at once (with a
    reason and the `ticket` parameter), for at most `max_duration`; the approvers and the
    `notify` groups are alerted, and an approver reviews it within `review_within`."""

    max_duration: timedelta
    review_within: timedelta
    notify: tuple[str, ...] = ()
    ticket: str = "ticket"  # the template parameter an emergency request must fill


@dataclass(frozen=True)
class ExtendRule:
    """How far the holder may extend a grant of a template without asking anyone: `times`
    extensions, adding `total` in all. Beyond it, an extension is approved as any request."""

    times: int
    total: timedelta


@dataclass(frozen=True)
class Template:
    name: str
    action: TemplateAction
    description: str = ""
    eligibility: tuple[Eligibility, ...] = ()
    approval: tuple[ApprovalLevel, ...] = ()
    max_duration: timedelta = timedelta(hours=8)
    auto_approve: bool = False
    change_info: tuple[ChangeSection, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    step_up: StepUpRule | None = None  # a fresh strong factor before approving (or filing)
    chat_approval: bool = True  # approvers may decide from Slack's buttons
    emergency: Emergency | None = None  # break-glass: granted at once, reviewed after
    extend: ExtendRule | None = None  # self-service extensions of its grants

    @property
    def decided_in_chat(self) -> bool:
        """Whether a chat button may decide (a step-up needs the web UI's passkey)."""
        return self.chat_approval and self.step_up_for(StepUpAct.APPROVE) is None

    def step_up_for(self, act: StepUpAct) -> StepUpRule | None:
        return self.step_up if self.step_up is not None and self.step_up.covers(act) else None

    @property
    def runbook(self) -> tuple[str, ...]:
        """The ordered steps run after approval, named as in the seed."""
        if self.action is TemplateAction.GRANT:
            return ("add_user_to_group", "tag_user")
        return ("remove_user_from_group", "untag_user")

    def requestable_groups(self, user_groups: Iterable[str]) -> frozenset[str]:
        """Work groups a person in `user_groups` may ask for with this template."""
        mine = set(user_groups)
        allowed: set[str] = set()
        for rule in self.eligibility:
            if rule.requesters & mine:
                allowed |= rule.groups
        return frozenset(allowed)


@dataclass(frozen=True)
class User:
    name: str
    display_name: str = ""
    email: str | None = None
    slack_id: str | None = None  # their Slack user ID, where e-mail does not match them


class ProviderKind(StrEnum):
    LOCAL = "local"  # sekisho's own directory
    AWS_IAM = "aws_iam"  # IAM groups and user tags, as the seed's runbook


class TagFormat(StrEnum):
    """How the `{group: end}` TTL tag's value is written."""

    SEED = "seed"  # YYYYMMDDhhmm in the model's zone, as the seed's TTL checker reads it
    ISO = "iso"  # ISO 8601 in UTC, to the second (2026-11-29T09:16:00Z)


@dataclass(frozen=True)
class ProviderSettings:
    """Where grants become real, and how to reach it."""

    kind: ProviderKind = ProviderKind.LOCAL
    region: str | None = None
    endpoint_url: str | None = None  # an AWS-compatible endpoint (tests, LocalStack)
    role_arn: str | None = None  # assumed by sekisho for its IAM and STS calls
    identity_account: str | None = None  # the account holding IAM users and groups (jump)
    reconcile_every: timedelta = timedelta(minutes=15)
    federation_url: str = "https://signin.aws.amazon.com/federation"
    # The model's default: the seed's form with aws_iam (its TTL checker may still run beside
    # sekisho), ISO 8601 in sekisho's own directory (nothing else reads it).
    tag_format: TagFormat = TagFormat.ISO


class ChannelType(StrEnum):
    WEBHOOK = "webhook"  # JSON, signed with HMAC-SHA256 over a timestamp and the body
    SLACK = "slack"  # a Slack incoming webhook (Block Kit)
    SLACK_APP = "slack_app"  # a Slack app's bot: approvers decide with its buttons
    EMAIL = "email"  # SMTP with STARTTLS, plain text + HTML
    SNS = "sns"  # an AWS SNS topic
    SSF = "ssf"  # a Shared Signals push stream a receiver registered (never in the model)


class NotifyEvent(StrEnum):
    """What a notification route can send, and when."""

    APPROVAL_NEEDED = "approval.needed"  # a request waits for a level's approvers
    REQUEST_DECIDED = "request.decided"  # approved, rejected, cancelled, expired undecided
    RUNBOOK_FINISHED = "runbook.finished"  # a removal's result, or a failed runbook
    GRANT_ACTIVATED = "grant.activated"  # the runbook succeeded: access holds until the end
    GRANT_ENDING_SOON = "grant.ending_soon"  # the reminder, `remind_before` the end
    GRANT_ENDED = "grant.ended"  # access ended: expired, released, revoked, removed
    EXPIRY_REPORT = "expiry.report"  # what the expiry sweep ended, and failed to end
    RECONCILE_REPORT = "reconcile.report"  # what the reconciler changed, and failed to change
    AUDIT_CHECKPOINT = "audit.checkpoint"  # the audit trail's head, signed (or a refusal)
    LOCK_CHANGED = "lock.changed"  # a lock was placed or removed
    EMERGENCY_USED = "emergency.used"  # someone granted themselves access in an emergency
    REVIEW_OVERDUE = "emergency.review_overdue"  # an emergency's review is past its due time


REPORT_EVENTS = frozenset(
    {
        NotifyEvent.EXPIRY_REPORT,
        NotifyEvent.RECONCILE_REPORT,
        NotifyEvent.AUDIT_CHECKPOINT,
        NotifyEvent.LOCK_CHANGED,
    }
)


@dataclass(frozen=True)
class Channel:
    """Where notifications go. Secrets are never here: only the names of environment
    variables that hold them (`secret_env`, `url_env`, `password_env`)."""

    name: str
    type: ChannelType
    description: str = ""
    timeout: timedelta = timedelta(seconds=10)
    url: str | None = None  # webhook
    url_env: str | None = None  # slack (the URL is the credential), or a webhook's
    secret_env: str | None = None  # webhook: the HMAC signing key
    ca_file: str | None = None  # webhook, email: trust this CA (PEM) instead of the system's
    host: str | None = None  # email: the SMTP server
    port: int = 587
    sender: str | None = None  # email: From
    to: tuple[str, ...] = ()  # email: fixed addresses; none: each person's own address
    username: str | None = None
    password_env: str | None = None
    starttls: bool = True
    topic_arn: str | None = None  # sns (its region is the one published to)
    endpoint_url: str | None = None  # sns: an AWS-compatible endpoint; slack_app: Slack's API
    slack_channel: str | None = None  # slack_app: the channel's ID
    bot_token_env: str | None = None  # slack_app: the bot token (xoxb-...)
    signing_secret_env: str | None = None  # slack_app: verifies Slack's requests to sekisho

    @property
    def personal(self) -> bool:
        """E-mail to each person concerned (their address in the model), not to a list."""
        return self.type is ChannelType.EMAIL and not self.to


@dataclass(frozen=True)
class NotificationRoute:
    """Events (and, optionally, only requests of some templates) to channels."""

    events: frozenset[str]  # NotifyEvent values, or "*"
    channels: tuple[str, ...]
    templates: frozenset[str] = frozenset()  # empty: any template

    def matches(self, event: str, template: str | None) -> bool:
        if event not in self.events and "*" not in self.events:
            return False
        return not self.templates or template in self.templates


@dataclass(frozen=True)
class Notifications:
    channels: tuple[Channel, ...] = ()
    routes: tuple[NotificationRoute, ...] = ()
    remind_before: timedelta = timedelta(minutes=15)

    def channel(self, name: str) -> Channel | None:
        return next((c for c in self.channels if c.name == name), None)

    def channels_for(self, event: str, template: str | None = None) -> tuple[Channel, ...]:
        """The channels a message of `event` (about a request of `template`) goes to."""
        names: dict[str, None] = {}
        for route in self.routes:
            if route.matches(event, template):
                names.update(dict.fromkeys(route.channels))
        found = (self.channel(n) for n in names)
        return tuple(c for c in found if c is not None)

    def routed(self, event: str) -> bool:
        """Whether some route may send `event` (for some template)."""
        return any(event in r.events or "*" in r.events for r in self.routes)


@dataclass(frozen=True)
class ModelSettings:
    timezone: str = "UTC"  # IANA name; how `YYYYMMDDhhmm` times are read
    # A pending request nobody decides on expires at its start (or end); this caps the wait.
    approval_timeout: timedelta = timedelta(days=3)


@dataclass(frozen=True)
class AccessModel:
    accounts: tuple[Account, ...] = ()
    targets: tuple[Target, ...] = ()
    groups: tuple[Group, ...] = ()
    templates: tuple[Template, ...] = ()
    users: tuple[User, ...] = ()
    settings: ModelSettings = field(default_factory=ModelSettings)
    provider: ProviderSettings = field(default_factory=ProviderSettings)
    notifications: Notifications = field(default_factory=Notifications)
    shared_signals: SharedSignals = field(default_factory=SharedSignals)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    jira: JiraSettings | None = None  # tickets: checked there before a request is filed
    pagerduty: PagerDutySettings | None = None  # who is on call, for levels that ask it

    def ttl_tag(self, end: datetime) -> str:
        """The TTL tag's value for a membership ending at `end`, as the provider gets it.
        Both the runbook (writing) and the reconciler (checking) use this one form."""
        if self.provider.tag_format is TagFormat.SEED:
            return seed_tag(end, zone(self.settings.timezone))
        return iso(end)

    # Lookups. The model is small (hundreds of entries); linear scans keep it a plain value.

    def user(self, name: str) -> User | None:
        return next((u for u in self.users if u.name == name), None)

    def user_of_slack(self, slack_id: str, email: str | None) -> User | None:
        """The model's user a Slack account is: by its ID in the model, else by its e-mail
        (case-insensitive), which Slack has verified for the workspace."""
        mapped = next((u for u in self.users if u.slack_id == slack_id), None)
        if mapped is not None or not email:
            return mapped
        wanted = email.casefold()
        return next((u for u in self.users if (u.email or "").casefold() == wanted), None)

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    def template(self, name: str) -> Template | None:
        return next((t for t in self.templates if t.name == name), None)

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)

    def account(self, name: str) -> Account | None:
        return next((a for a in self.accounts if a.name == name), None)

    def role(self, ref: str) -> Role | None:
        return next((r for r in self.roles() if r.ref == ref), None)

    def roles(self) -> Iterator[Role]:
        for account in self.accounts:
            yield from account.roles

    def standing_groups_of(self, user: str) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if user in g.members)

    def approver_groups(self, template: str) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if template in g.permissions.approve)

    def is_admin(self, user: str) -> bool:
        return any(g.permissions.admin for g in self.standing_groups_of(user))

    def is_auditor(self, user: str) -> bool:
        groups = self.standing_groups_of(user)
        return any(g.permissions.audit or g.permissions.admin for g in groups)

    def may_lock(self, user: str) -> bool:
        groups = self.standing_groups_of(user)
        return any(g.permissions.lock or g.permissions.admin for g in groups)

    def lockers(self) -> tuple[str, ...]:
        """Everyone who may place locks (who is told when one is placed or removed)."""
        return tuple(u.name for u in self.users if self.may_lock(u.name))

    def admins(self) -> tuple[str, ...]:
        """Everyone who administers sekisho (who gets its reports)."""
        return tuple(u.name for u in self.users if self.is_admin(u.name))

    def groups_allowing(self, verb: Verb, obj: str) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if g.permissions.allows(verb, obj))

    def exists(self, verb: Verb, obj: str) -> bool:
        if verb is Verb.ASSUME:
            return self.role(obj) is not None
        return self.target(obj) is not None
