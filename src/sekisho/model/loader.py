"""Load an access-model file: parse, check the shape, check the references, build the value."""

from __future__ import annotations

import pathlib

from sekisho.domain.access import (
    AccessModel,
    Account,
    ApprovalLevel,
    ChangeSection,
    Channel,
    ChannelType,
    Eligibility,
    Emergency,
    ExtendRule,
    Group,
    GroupKind,
    JiraSettings,
    ModelSettings,
    NotificationRoute,
    Notifications,
    OnCall,
    PagerDutySettings,
    Parameter,
    Permissions,
    Protocol,
    ProviderKind,
    ProviderSettings,
    Role,
    TagFormat,
    Target,
    Template,
    TemplateAction,
    User,
)
from sekisho.domain.errors import InvalidModel, ModelProblem
from sekisho.domain.shared_signals import SharedSignals, SignalReceiver, SignalRule
from sekisho.domain.sso import IdentitySettings, OidcSettings
from sekisho.domain.step_up import Factor, StepUpAct, StepUpRule
from sekisho.model.checks import (
    check,
    check_identity,
    check_on_call,
    check_provider,
    check_shared_signals,
    check_tickets,
)
from sekisho.model.schema import (
    AccountDoc,
    ChannelDoc,
    EmergencyDoc,
    GroupDoc,
    IdentityDoc,
    ModelDoc,
    OnCallDoc,
    ProviderDoc,
    RouteDoc,
    SharedSignalsDoc,
    StepUpDoc,
    TargetDoc,
    TemplateDoc,
    UserDoc,
)
from sekisho.model.shape import Shaped, validate
from sekisho.model.source import MAX_BYTES, parse


def _analyse(text: str, filename: str) -> tuple[list[ModelProblem], Shaped | None]:
    parsed = parse(text, filename)
    if parsed.problems and parsed.data is None:
        return _sorted(parsed.problems), None
    shaped = validate(parsed)
    check(parsed, shaped)
    check_provider(parsed, shaped)
    check_shared_signals(parsed, shaped)
    check_identity(parsed, shaped)
    check_tickets(parsed, shaped)
    check_on_call(parsed, shaped)
    return _sorted(parsed.problems), shaped


def _sorted(problems: list[ModelProblem]) -> list[ModelProblem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line, p.path, p.rule))


def check_text(text: str, filename: str = "<model>") -> list[ModelProblem]:
    """Every problem in `text`, sorted by line; `[]` when the model is valid."""
    problems, _ = _analyse(text, filename)
    return problems


def load_text(text: str, filename: str = "<model>") -> AccessModel:
    """The access model in `text`, or `InvalidModel` listing every problem found."""
    problems, shaped = _analyse(text, filename)
    if problems or shaped is None or shaped.top is None or not shaped.complete:
        raise InvalidModel(problems or [ModelProblem(filename, 1, "invalid_value", "not valid")])
    return build(shaped.top, shaped)


def load_file(path: str | pathlib.Path) -> AccessModel:
    """Read a UTF-8 model file and load it; an unreadable file is one problem on line 0."""
    filename = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InvalidModel(
            [ModelProblem(filename, 0, "file", f"cannot read {filename}: {reason}")]
        ) from exc
    if len(raw) > MAX_BYTES:
        raise InvalidModel(
            [
                ModelProblem(
                    filename,
                    0,
                    "file_too_large",
                    f"the file is larger than {MAX_BYTES} bytes; an access model is far smaller",
                )
            ]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InvalidModel(
            [ModelProblem(filename, 0, "file", f"line {line} is not UTF-8 text: save as UTF-8")]
        ) from exc
    return load_text(text, filename)


def build(top: ModelDoc, shaped: Shaped) -> AccessModel:
    """The domain value from fully validated entries."""
    return AccessModel(
        accounts=tuple(_account(e.doc) for e in shaped.accounts),
        targets=tuple(_target(e.doc) for e in shaped.targets),
        groups=tuple(_group(e.doc) for e in shaped.groups),
        templates=tuple(_template(e.doc) for e in shaped.templates),
        users=tuple(_user(e.doc) for e in shaped.users),
        settings=ModelSettings(
            timezone=top.settings.timezone, approval_timeout=top.settings.approval_timeout
        ),
        provider=ProviderSettings(
            kind=ProviderKind(top.provider.type),
            region=top.provider.region,
            endpoint_url=top.provider.endpoint_url,
            role_arn=top.provider.role_arn,
            identity_account=top.provider.identity_account,
            reconcile_every=top.provider.reconcile_every,
            federation_url=top.provider.federation_url,
            tag_format=_tag_format(top.provider),
        ),
        notifications=Notifications(
            channels=tuple(_channel(e.doc) for e in shaped.channels),
            routes=tuple(_route(e.doc) for e in shaped.routes),
            remind_before=top.notifications.remind_before,
        ),
        shared_signals=_shared_signals(top.shared_signals),
        identity=_identity(top.identity),
        jira=_jira(top),
        pagerduty=_pagerduty(top),
    )


def _pagerduty(top: ModelDoc) -> PagerDutySettings | None:
    pd = top.on_call.pagerduty
    return None if pd is None else PagerDutySettings(pd.token_env, pd.api_url, pd.ca_file)


def _on_call(doc: OnCallDoc | None) -> OnCall | None:
    if doc is None:
        return None
    return OnCall(doc.on_call, frozenset(doc.escalation_levels))


def _jira(top: ModelDoc) -> JiraSettings | None:
    jira = top.tickets.jira
    return None if jira is None else JiraSettings(jira.url, jira.token_env, jira.user_env)


def _identity(doc: IdentityDoc) -> IdentitySettings:
    oidc = doc.oidc
    admit = frozenset(name.casefold() for name in doc.admit.idp_groups)
    if oidc is None:
        return IdentitySettings(admit_idp_groups=admit)
    return IdentitySettings(
        admit_idp_groups=admit,
        oidc=OidcSettings(
            issuer=oidc.issuer,
            client_id=oidc.client_id,
            client_secret_env=oidc.client_secret_env,
            scopes=tuple(oidc.scopes),
            username_claim=oidc.username_claim,
            groups_claim=oidc.groups_claim,
            display_name=oidc.display_name,
        ),
    )


def _shared_signals(doc: SharedSignalsDoc) -> SharedSignals:
    receive = doc.receive
    if receive is None:
        return SharedSignals()
    return SharedSignals(
        receive=SignalReceiver(
            issuer=receive.issuer,
            jwks_uri=receive.jwks_uri,
            audience=receive.audience,
            token_env=receive.token_env,
            on_session_revoked=SignalRule(receive.on_session_revoked),
            on_credential_change=SignalRule(receive.on_credential_change),
            lock_for=receive.lock_for,
        )
    )


def _tag_format(doc: ProviderDoc) -> TagFormat:
    """As written; else the seed's form on IAM (its TTL checker may run beside sekisho while
    moving), ISO 8601 in sekisho's own directory."""
    if doc.tag_format is not None:
        return TagFormat(doc.tag_format)
    return TagFormat.SEED if ProviderKind(doc.type) is ProviderKind.AWS_IAM else TagFormat.ISO


def _channel(doc: ChannelDoc) -> Channel:
    return Channel(
        name=doc.name,
        type=ChannelType(doc.type),
        description=doc.description,
        timeout=doc.timeout,
        url=doc.url,
        url_env=doc.url_env,
        secret_env=doc.secret_env,
        ca_file=doc.ca_file,
        host=doc.host,
        port=doc.port,
        sender=doc.sender,
        to=tuple(doc.to),
        username=doc.username,
        password_env=doc.password_env,
        starttls=doc.starttls,
        topic_arn=doc.topic_arn,
        endpoint_url=doc.endpoint_url,
        slack_channel=doc.slack_channel,
        bot_token_env=doc.bot_token_env,
        signing_secret_env=doc.signing_secret_env,
    )


def _route(doc: RouteDoc) -> NotificationRoute:
    return NotificationRoute(
        events=frozenset(doc.events),
        channels=tuple(dict.fromkeys(doc.channels)),
        templates=frozenset(doc.templates),
    )


def _account(doc: AccountDoc) -> Account:
    roles = tuple(
        Role(
            doc.name,
            r.name,
            description=r.description,
            max_session=r.max_session,
            console=r.console,
            managed_policies=tuple(r.managed_policies),
        )
        for r in doc.roles
    )
    return Account(doc.name, doc.description, doc.aws_account_id, roles, doc.broker_role_arn)


def _target(doc: TargetDoc) -> Target:
    return Target(
        name=doc.name,
        host=doc.host,
        port=doc.port,
        account=doc.account,
        dns_name=doc.dns_name,
        protocol=Protocol(doc.protocol),
        description=doc.description,
        idle_timeout=doc.idle_timeout,
        max_session=doc.max_session,
    )


def _user(doc: UserDoc) -> User:
    return User(doc.name, doc.display_name, doc.email, doc.slack_id)


def _group(doc: GroupDoc) -> Group:
    perms = doc.permissions
    return Group(
        name=doc.name,
        kind=GroupKind(doc.kind),
        description=doc.description,
        members=frozenset(doc.members),
        idp_groups=frozenset(name.casefold() for name in doc.idp_groups),
        permissions=Permissions(
            assume=frozenset(perms.assume),
            connect=frozenset(perms.connect),
            approve=frozenset(perms.approve),
            audit=perms.audit,
            lock=perms.lock,
            admin=perms.admin,
        ),
    )


def _template(doc: TemplateDoc) -> Template:
    return Template(
        name=doc.name,
        action=TemplateAction(doc.action),
        description=doc.description,
        eligibility=tuple(
            Eligibility(frozenset(e.requesters), frozenset(e.groups)) for e in doc.eligibility
        ),
        approval=tuple(
            ApprovalLevel(a.approvers, a.min_approvals, _on_call(a.auto_approve))
            for a in doc.approval
        ),
        max_duration=doc.max_duration,
        auto_approve=doc.auto_approve,
        change_info=tuple(ChangeSection(c.name, c.title, c.required) for c in doc.change_info),
        parameters=tuple(
            Parameter(p.name, p.description, p.required, p.pattern, p.jira) for p in doc.parameters
        ),
        step_up=_step_up(doc.step_up),
        chat_approval=doc.chat_approval,
        emergency=_emergency(doc.emergency),
        extend=ExtendRule(doc.extend.times, doc.extend.total) if doc.extend else None,
    )


def _emergency(doc: EmergencyDoc | None) -> Emergency | None:
    if doc is None:
        return None
    return Emergency(doc.max_duration, doc.review_within, tuple(doc.notify), doc.ticket)


def _step_up(doc: StepUpDoc | None) -> StepUpRule | None:
    if doc is None:
        return None
    acts = frozenset(StepUpAct(act) for act in doc.to)
    return StepUpRule(within=doc.within, factor=Factor(doc.factor), acts=acts)
