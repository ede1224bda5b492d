"""Cross-reference and access rules: the checks no single entry can make on its own.

Names are collected from the raw data, so an entry with a shape problem still counts as
defined (one typo in a user's e-mail must not also report every group naming that user).
The deeper rules look only at entries that passed shape validation.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sekisho.domain.access import REPORT_EVENTS
from sekisho.domain.hosts import is_loopback
from sekisho.domain.text import ROLE_REF
from sekisho.domain.timespec import format_duration
from sekisho.model.schema import (
    ChannelDoc,
    GroupDoc,
    RouteDoc,
    SignalReceiverDoc,
    TemplateDoc,
)
from sekisho.model.shape import Entry, Shaped
from sekisho.model.source import Parsed, Path


@dataclass
class Names:
    """Every name the file defines, pointing at its first definition."""

    accounts: dict[str, Path] = field(default_factory=dict)
    roles: dict[str, Path] = field(default_factory=dict)  # "account/role"
    targets: dict[str, Path] = field(default_factory=dict)
    users: dict[str, Path] = field(default_factory=dict)
    groups: dict[str, Path] = field(default_factory=dict)
    templates: dict[str, Path] = field(default_factory=dict)
    group_kinds: dict[str, str] = field(default_factory=dict)
    channels: dict[str, Path] = field(default_factory=dict)  # notifications.channels


def check(parsed: Parsed, shaped: Shaped) -> None:
    """Append every cross-reference problem to `parsed.problems`."""
    names = collect_names(parsed)
    groups: dict[str, Entry[GroupDoc]] = {}
    for entry in shaped.groups:
        groups.setdefault(entry.doc.name, entry)
    for account in shaped.accounts:
        for index, role in enumerate(account.doc.roles):
            ref = f"{account.doc.name}/{role.name}"
            if not ROLE_REF.fullmatch(ref):
                parsed.add(
                    (*account.path, "roles", index, "name"),
                    "role_ref_format",
                    f"{ref!r} cannot be written as a role reference: account names may use "
                    "letters, digits and ._- (up to 64), role names letters, digits and "
                    "._+=,@- (up to 64)",
                )
    for target in shaped.targets:
        account_name = target.doc.account
        if account_name is not None and account_name not in names.accounts:
            parsed.add(
                (*target.path, "account"),
                "unknown_account",
                f"no account named {account_name!r} is defined"
                f"{_suggest(account_name, names.accounts)}",
            )
    for group in shaped.groups:
        _check_group(parsed, names, group)
    for template in shaped.templates:
        _check_template(parsed, names, groups, template)
    _check_notifications(parsed, names, shaped)


def check_provider(parsed: Parsed, shaped: Shaped) -> None:
    """With IAM behind sekisho, what AWS needs to hear must be in the model."""
    top = shaped.top
    if top is None or top.provider.type != "aws_iam":
        return
    if top.provider.region is None:
        parsed.add(
            ("provider", "type"),
            "provider_region_required",
            "the aws_iam provider needs provider.region (e.g. ap-northeast-1)",
        )
    identity = top.provider.identity_account
    accounts = {a.doc.name: a for a in shaped.accounts}
    if identity is not None and (
        identity not in accounts or accounts[identity].doc.aws_account_id is None
    ):
        parsed.add(
            ("provider", "identity_account"),
            "unknown_account",
            f"provider.identity_account names {identity!r}: an account with an aws_account_id",
        )
    for account in shaped.accounts:
        if account.doc.roles and account.doc.aws_account_id is None:
            parsed.add(
                (*account.path, "name"),
                "aws_account_id_required",
                f"account {account.doc.name!r} has roles, and with the aws_iam provider "
                "sekisho assumes them by ARN: give its aws_account_id",
            )


def collect_names(parsed: Parsed) -> Names:
    """Gather defined names from the raw data, reporting names defined twice."""
    names = Names()
    data = parsed.data if isinstance(parsed.data, dict) else {}
    sections: list[tuple[str, str, dict[str, Path]]] = [
        ("accounts", "account", names.accounts),
        ("targets", "target", names.targets),
        ("users", "user", names.users),
        ("groups", "group", names.groups),
        ("templates", "template", names.templates),
    ]
    for section, noun, seen in sections:
        for index, item in _items(data.get(section)):
            path: Path = (section, index)
            _define(parsed, item, path, noun, seen)
            raw_name = item.get("name")
            name = raw_name if isinstance(raw_name, str) else None
            if section == "accounts":
                in_account: dict[str, Path] = {}
                for role_index, role in _items(item.get("roles")):
                    role_path: Path = (*path, "roles", role_index)
                    role_name = _define(
                        parsed, role, role_path, "role", in_account, f"account {name}"
                    )
                    if name is not None and role_name is not None:
                        names.roles.setdefault(f"{name}/{role_name}", role_path)
            elif section == "templates":
                for key, noun_in in (("change_info", "change_info"), ("parameters", "parameter")):
                    inner: dict[str, Path] = {}
                    for inner_index, inner_item in _items(item.get(key)):
                        _define(parsed, inner_item, (*path, key, inner_index), noun_in, inner)
            elif section == "groups" and name is not None:
                kind = item.get("kind")
                if isinstance(kind, str) and kind in ("standing", "work"):
                    names.group_kinds.setdefault(name, kind)
    notifications = data.get("notifications")
    if isinstance(notifications, dict):
        for index, item in _items(notifications.get("channels")):
            _define(parsed, item, ("notifications", "channels", index), "channel", names.channels)
    return names


def _items(value: Any) -> Iterable[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield index, item


def _define(
    parsed: Parsed,
    item: dict[str, Any],
    path: Path,
    noun: str,
    seen: dict[str, Path],
    scope: str | None = None,
) -> str | None:
    name = item.get("name")
    if not isinstance(name, str):
        return None
    first = seen.get(name)
    if first is None:
        seen[name] = path
        return name
    within = f" in {scope}" if scope else ""
    label = "change_info section" if noun == "change_info" else noun
    article = "an" if noun[0] in "aeiou" else "a"
    parsed.add(
        (*path, "name"),
        f"duplicate_{noun}",
        f"{article} {label} named {name!r} is already defined{within} on line "
        f"{parsed.line_of((*first, 'name'))}; names must be unique",
    )
    return None


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_group(parsed: Parsed, names: Names, entry: Entry[GroupDoc]) -> None:
    group, path = entry.doc, entry.path
    perms = group.permissions
    for index, member in enumerate(group.members):
        if member not in names.users:
            parsed.add(
                (*path, "members", index),
                "unknown_user",
                f"no user named {member!r} is defined{_suggest(member, names.users)}",
            )
    if group.kind == "work" and group.members:
        parsed.add(
            (*path, "members"),
            "work_group_members",
            f"{group.name} is a work group: only approved requests fill it, for a bounded "
            "time. Remove its members, or make it kind: standing",
        )
    if group.kind == "work" and group.idp_groups:
        parsed.add(
            (*path, "idp_groups"),
            "work_group_idp_groups",
            f"{group.name} is a work group: only approved requests fill it, never the identity "
            "provider. Map the IdP group onto a standing group instead",
        )
    for index, ref in enumerate(perms.assume):
        if ref not in names.roles:
            parsed.add(
                (*path, "permissions", "assume", index), "unknown_role", _unknown_role(names, ref)
            )
    for index, target in enumerate(perms.connect):
        if target not in names.targets:
            parsed.add(
                (*path, "permissions", "connect", index),
                "unknown_target",
                f"no target named {target!r} is defined{_suggest(target, names.targets)}",
            )
    for index, template in enumerate(perms.approve):
        if template not in names.templates:
            parsed.add(
                (*path, "permissions", "approve", index),
                "unknown_template",
                f"no template named {template!r} is defined{_suggest(template, names.templates)}",
            )
    if group.kind == "work":
        privileges = [
            ("approve", bool(perms.approve)),
            ("audit", perms.audit),
            ("lock", perms.lock),
            ("admin", perms.admin),
        ]
        for key, present in privileges:
            if present:
                parsed.add(
                    (*path, "permissions", key),
                    "work_group_privilege",
                    f"{group.name} is a work group, and a request may only grant assume and "
                    f"connect; give {key} to a standing group instead",
                )


def _unknown_role(names: Names, ref: str) -> str:
    account, _, role = ref.partition("/")
    if account not in names.accounts:
        return f"no account named {account!r} is defined{_suggest(account, names.accounts)}"
    defined = sorted(r.split("/", 1)[1] for r in names.roles if r.split("/", 1)[0] == account)
    if not defined:
        return f"account {account!r} defines no roles; add {role!r} under its roles"
    return f"account {account!r} has no role {role!r}{_suggest(role, defined)}"


def _check_template(
    parsed: Parsed, names: Names, groups: dict[str, Entry[GroupDoc]], entry: Entry[TemplateDoc]
) -> None:
    template, path = entry.doc, entry.path
    for index, rule in enumerate(template.eligibility):
        rule_path: Path = (*path, "eligibility", index)
        for at, name in enumerate(rule.requesters):
            kind = _group_kind(parsed, names, name, (*rule_path, "requesters", at))
            if kind == "work":
                parsed.add(
                    (*rule_path, "requesters", at),
                    "eligibility_requester_work",
                    f"{name} is a work group; requesters must be standing groups, whose "
                    "members are the people allowed to ask",
                )
        for at, name in enumerate(rule.groups):
            kind = _group_kind(parsed, names, name, (*rule_path, "groups", at))
            if kind == "standing":
                parsed.add(
                    (*rule_path, "groups", at),
                    "eligibility_target_standing",
                    f"{name} is a standing group; a request may only fill a work group. Name a "
                    "work group here, or make this one kind: work",
                )
    if not entry.whole:
        # Fields may have been left out of a broken entry: judge only what is present.
        _check_levels(parsed, names, groups, entry)
        return
    if not template.approval and not template.auto_approve:
        parsed.add(
            path,
            "template_without_approvers",
            f"template {template.name} has no approval levels, so no request made with it "
            "could be approved; add approval, or set auto_approve: true",
        )
    if template.action == "grant" and not template.eligibility:
        parsed.add(
            path,
            "template_without_eligibility",
            f"grant template {template.name} has no eligibility, so nobody may use it; add "
            "eligibility with requesters and groups",
        )
    _check_extend(parsed, entry)
    if _check_levels(parsed, names, groups, entry) and not template.auto_approve:
        _check_feasible(parsed, groups, entry)
    _check_emergency(parsed, names, entry)


def _check_emergency(parsed: Parsed, names: Names, entry: Entry[TemplateDoc]) -> None:
    """Break-glass must be reviewable, bounded by the template, and carry its ticket."""
    template, path = entry.doc, (*entry.path, "emergency")
    emergency = template.emergency
    if emergency is None:
        return
    if template.action != "grant":
        parsed.add(
            path,
            "emergency_remove_template",
            f"{template.name} removes access; only a grant template can have an emergency section",
        )
    if not template.approval:
        parsed.add(
            path,
            "emergency_without_approvers",
            f"{template.name} has no approval "
            "levels, so nobody could review an emergency use; add approval",
        )
    if emergency.max_duration > template.max_duration:
        parsed.add(
            (*path, "max_duration"),
            "emergency_max_duration",
            f"an emergency grants at most the template's max_duration "
            f"({format_duration(template.max_duration)}), not "
            f"{format_duration(emergency.max_duration)}",
        )
    if emergency.ticket not in {p.name for p in template.parameters}:
        parsed.add(
            (*path, "ticket"),
            "emergency_ticket_parameter",
            f"{template.name} has no parameter {emergency.ticket!r}; an emergency request "
            "carries its ticket there: add it under parameters",
        )
    for index, name in enumerate(emergency.notify):
        kind = _group_kind(parsed, names, name, (*path, "notify", index))
        if kind == "work":
            parsed.add(
                (*path, "notify", index),
                "emergency_notify_work_group",
                f"{name} is a work group, with no members to alert; name a standing group",
            )


def _check_extend(parsed: Parsed, entry: Entry[TemplateDoc]) -> None:
    """Self-service extensions belong to grants, within what the template grants at most
    (the whole span of a grant counts against max_duration, extensions included)."""
    template, extend = entry.doc, entry.doc.extend
    if extend is None:
        return
    if template.action != "grant":
        parsed.add(
            (*entry.path, "extend"),
            "extend_not_grant",
            f"template {template.name} removes access; only grants are extended. Move extend "
            "to the grant template",
        )
    elif extend.total > template.max_duration:
        parsed.add(
            (*entry.path, "extend", "total"),
            "extend_total_range",
            f"extend.total {format_duration(extend.total)} is longer than max_duration "
            f"{format_duration(template.max_duration)}, which bounds a grant's whole span, "
            "extensions included; give at most that",
        )


def _group_kind(parsed: Parsed, names: Names, name: str, path: Path) -> str | None:
    if name not in names.groups:
        parsed.add(
            path,
            "unknown_group",
            f"no group named {name!r} is defined{_suggest(name, names.groups)}",
        )
        return None
    return names.group_kinds.get(name)


def _check_levels(
    parsed: Parsed, names: Names, groups: dict[str, Entry[GroupDoc]], entry: Entry[TemplateDoc]
) -> bool:
    """Check each approval level; True when every level's group is known and sound."""
    template, path = entry.doc, entry.path
    sound = True
    for index, level in enumerate(template.approval):
        level_path: Path = (*path, "approval", index)
        kind = _group_kind(parsed, names, level.approvers, (*level_path, "approvers"))
        group = groups.get(level.approvers)
        if kind is None:
            sound = False
            continue
        if kind == "work":
            parsed.add(
                (*level_path, "approvers"),
                "approver_lacks_permission",
                f"{level.approvers} is a work group; approvers must be a standing group with "
                f"approve: [{template.name}]",
            )
            sound = False
        elif group is None or not group.whole:
            sound = False  # its approve list or members may have been left out
        elif template.name not in group.doc.permissions.approve:
            parsed.add(
                (*level_path, "approvers"),
                "approver_lacks_permission",
                f"{level.approvers} may not approve {template.name}: add {template.name} to "
                f"its permissions.approve (line {parsed.line_of(group.path)})",
            )
            sound = False
        elif len(group.doc.members) < level.min_approvals:
            parsed.add(
                (*level_path, "min_approvals"),
                "approvers_too_few",
                f"level {index + 1} needs {level.min_approvals} approvals but "
                f"{level.approvers} has {len(group.doc.members)} member(s)",
            )
            sound = False
    return sound


def _check_feasible(
    parsed: Parsed, groups: dict[str, Entry[GroupDoc]], entry: Entry[TemplateDoc]
) -> None:
    """Report requesters whose requests could never collect every approval."""
    template = entry.doc
    if not template.approval:
        return
    requesters: set[str] = set()
    for rule in template.eligibility:
        for name in rule.requesters:
            group = groups.get(name)
            if group is None or not group.whole:
                return  # who may ask is not fully known
            if group.doc.kind == "standing":
                requesters.update(group.doc.members)
    pools = [frozenset(groups[level.approvers].doc.members) for level in template.approval]
    slots = [
        pool
        for level, pool in zip(template.approval, pools, strict=True)
        for _ in range(level.min_approvals)
    ]
    if _max_matching(slots) < len(slots):
        stuck = sorted(requesters)  # levels share people: too few even with nobody excluded
    else:
        # Only a requester who is also an approver takes someone out of the pools.
        approvers = frozenset().union(*pools)
        stuck = sorted(
            r
            for r in requesters & approvers
            if _max_matching([s - {r} for s in slots]) < len(slots)
        )
    if stuck:
        who = ", ".join(stuck[:5]) + (f" and {len(stuck) - 5} more" if len(stuck) > 5 else "")
        parsed.add(
            (*entry.path, "approval"),
            "approval_impossible",
            f"{who} may request with {template.name} but could never be approved: nobody "
            f"approves their own request and each person decides once, so the levels need "
            f"{len(slots)} other approvers. Add approvers or lower min_approvals",
        )


def _max_matching(slots: list[frozenset[str]]) -> int:
    """Most slots that distinct people can fill (augmenting paths; the sets are small)."""
    holder: dict[str, int] = {}

    def place(slot: int, visited: set[str]) -> bool:
        for person in sorted(slots[slot]):
            if person in visited:
                continue
            visited.add(person)
            if person not in holder or place(holder[person], visited):
                holder[person] = slot
                return True
        return False

    return sum(1 for slot in range(len(slots)) if place(slot, set()))


# -- notifications ---------------------------------------------------------------------------

_CHANNEL_COMMON = frozenset({"name", "type", "description", "timeout"})
_CHANNEL_FIELDS: dict[str, frozenset[str]] = {
    "webhook": frozenset({"url", "url_env", "secret_env", "ca_file"}),
    "slack": frozenset({"url_env"}),
    "slack_app": frozenset(
        {"slack_channel", "bot_token_env", "signing_secret_env", "endpoint_url"}
    ),
    "email": frozenset(
        {"host", "port", "sender", "to", "username", "password_env", "starttls", "ca_file"}
    ),
    "sns": frozenset({"topic_arn", "endpoint_url"}),
}
_SECRET_FIELDS = ("secret", "password", "token")
_SECRET_HOME = {
    "webhook": "secret_env (the signing key) or url_env (a URL that carries a token)",
    "slack": "url_env",
    "slack_app": "bot_token_env and signing_secret_env",
    "email": "password_env",
    "sns": "nothing: sekisho takes AWS credentials from the environment, a profile or a role",
}


def _check_notifications(parsed: Parsed, names: Names, shaped: Shaped) -> None:
    for channel in shaped.channels:
        _check_channel(parsed, channel)
    for route in shaped.routes:
        _check_route(parsed, names, route)


def _check_channel(parsed: Parsed, entry: Entry[ChannelDoc]) -> None:
    channel, path = entry.doc, entry.path
    given = channel.model_fields_set
    for key in _SECRET_FIELDS:
        if key in given:
            parsed.add(
                (*path, key),
                "secret_in_model",
                f"{key} would put a secret in the model, which is stored, shown and versioned; "
                f"keep it in an environment variable and name that with "
                f"{_SECRET_HOME[channel.type]}",
            )
    if channel.type == "slack" and "url" in given:
        parsed.add(
            (*path, "url"),
            "secret_in_model",
            "a Slack incoming-webhook URL is itself the credential: keep it in an environment "
            "variable and name that with url_env",
        )
    own = _CHANNEL_FIELDS[channel.type]
    allowed = _CHANNEL_COMMON | own | set(_SECRET_FIELDS)
    if channel.type == "slack":
        allowed |= {"url"}  # refused above, as a secret
    for key in sorted(given - allowed):
        parsed.add(
            (*path, key),
            "channel_setting",
            f"{key} is not a setting of a {channel.type} channel "
            f"(its settings: {', '.join(sorted(own))})",
        )
    _check_transport(parsed, entry)
    if entry.whole:
        _check_channel_complete(parsed, entry)


def _check_channel_complete(parsed: Parsed, entry: Entry[ChannelDoc]) -> None:
    channel, path = entry.doc, entry.path
    given = channel.model_fields_set
    needs: list[tuple[str, str]] = []
    if channel.type == "webhook":
        if "url" in given and "url_env" in given:
            parsed.add((*path, "url_env"), "channel_setting", "give url or url_env, not both")
        elif not given & {"url", "url_env"}:
            needs.append(("url", "the receiver's URL (or url_env naming a variable holding it)"))
        if "secret_env" not in given:
            signing_key = "the environment variable holding its signing key (always signed)"
            needs.append(("secret_env", signing_key))
    elif channel.type == "slack" and not given & {"url", "url_env"}:
        needs.append(("url_env", "the environment variable holding the incoming-webhook URL"))
    elif channel.type == "slack_app":
        for key, what in (
            ("slack_channel", "the ID of the channel the bot posts to"),
            ("bot_token_env", "the environment variable holding the bot token (xoxb-...)"),
            ("signing_secret_env", "the environment variable holding the app's signing secret"),
        ):
            if key not in given:
                needs.append((key, what))
    elif channel.type == "email":
        for key, what in (("host", "the SMTP server"), ("sender", "the From address")):
            if key not in given:
                needs.append((key, what))
        if "username" in given and "password_env" not in given:
            needs.append(("password_env", "the environment variable holding the password"))
        if "password_env" in given and "username" not in given:
            needs.append(("username", "the user the password belongs to"))
    elif channel.type == "sns" and "topic_arn" not in given:
        needs.append(("topic_arn", "the SNS topic to publish to"))
    for key, what in needs:
        article = "an" if channel.type == "email" else "a"
        parsed.add(path, "required", f"{article} {channel.type} channel needs {key}: {what}")


def _check_transport(parsed: Parsed, entry: Entry[ChannelDoc]) -> None:
    """Messages carry who asked for what and why: no clear text off this machine."""
    channel, path = entry.doc, entry.path
    for key in ("url", "endpoint_url"):
        url = getattr(channel, key)
        if url is None or channel.type == "slack":
            continue
        parts = urlsplit(url)
        if parts.username or parts.password:
            parsed.add(
                (*path, key),
                "secret_in_model",
                f"{key} carries credentials; keep the URL in an environment variable (url_env)",
            )
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            parsed.add(
                (*path, key),
                "insecure_transport",
                f"{key} is plain http to {parts.hostname}: use https (http only to a loopback "
                "address)",
            )
    if channel.type == "email" and not channel.starttls and not is_loopback(channel.host):
        parsed.add(
            (*path, "starttls"),
            "insecure_transport",
            f"mail to {channel.host} without STARTTLS would cross the network in clear text; "
            "keep starttls: true (false only for a relay on a loopback address)",
        )


def _check_route(parsed: Parsed, names: Names, entry: Entry[RouteDoc]) -> None:
    route, path = entry.doc, entry.path
    if entry.whole:
        for key in ("events", "channels"):
            if not getattr(route, key):
                parsed.add((*path, key), "required", f"a route needs {key}: list at least one")
    for index, name in enumerate(route.channels):
        if name not in names.channels:
            parsed.add(
                (*path, "channels", index),
                "unknown_channel",
                f"no channel named {name!r} is defined{_suggest(name, names.channels)}",
            )
    for index, name in enumerate(route.templates):
        if name not in names.templates:
            parsed.add(
                (*path, "templates", index),
                "unknown_template",
                f"no template named {name!r} is defined{_suggest(name, names.templates)}",
            )
    if route.templates:
        for index, event in enumerate(route.events):
            if event in REPORT_EVENTS:
                parsed.add(
                    (*path, "events", index),
                    "route_never_matches",
                    f"{event} concerns no template, so a route limited to templates never "
                    "sends it; route it without templates",
                )


# -- shared signals --------------------------------------------------------------------------

LOCK_FOR_MIN = timedelta(minutes=1)
LOCK_FOR_MAX = timedelta(days=90)
_RECEIVE: Path = ("shared_signals", "receive")


def check_shared_signals(parsed: Parsed, shaped: Shaped) -> None:
    """The transmitter's keys must not be swappable in transit, and a lock must last a while."""
    top = shaped.top
    if top is None or top.shared_signals.receive is None:
        return
    receive = top.shared_signals.receive
    _check_jwks_uri(parsed, receive)
    if receive.audience is not None and not receive.audience:
        parsed.add(
            (*_RECEIVE, "audience"),
            "required",
            "audience is empty: give the value the SETs' aud holds, or leave it out (sekisho's "
            "public URL)",
        )
    lock_for = receive.lock_for
    if lock_for is not None and not LOCK_FOR_MIN <= lock_for <= LOCK_FOR_MAX:
        parsed.add(
            (*_RECEIVE, "lock_for"),
            "lock_for_range",
            f"a lock from a signal lasts {format_duration(LOCK_FOR_MIN)} to "
            f"{format_duration(LOCK_FOR_MAX)}, not {format_duration(lock_for)}; leave lock_for "
            "out to lock until the lock is removed",
        )


def _check_jwks_uri(parsed: Parsed, receive: SignalReceiverDoc) -> None:
    """Whoever can change the keys in transit can sign events that lock anyone out."""
    path: Path = (*_RECEIVE, "jwks_uri")
    try:
        parts = urlsplit(receive.jwks_uri)
        host = parts.hostname
    except ValueError:
        parsed.add(path, "url_format", f"jwks_uri: {receive.jwks_uri[:60]!r} is not an http(s) URL")
        return
    if parts.scheme == "http" and not is_loopback(host):
        parsed.add(
            path,
            "jwks_uri_transport",
            f"jwks_uri is plain http to {host}: the keys that sign security events must come "
            "over https (http only to a loopback address: localhost, 127.0.0.0/8, ::1)",
        )


# -- identity --------------------------------------------------------------------------------

_OIDC: Path = ("identity", "oidc")


def check_identity(parsed: Parsed, shaped: Shaped) -> None:
    """Whoever can read or change the sign-in's traffic can sign in as anyone: https only; the
    client secret lives in the environment; `openid` is what makes it OpenID Connect."""
    top = shaped.top
    if top is None or top.identity.oidc is None:
        return
    oidc = top.identity.oidc
    if oidc.client_secret is not None:
        parsed.add(
            (*_OIDC, "client_secret"),
            "secret_in_model",
            "client_secret would put a secret in the model, which is stored, shown and "
            "versioned; keep it in an environment variable and name that with client_secret_env",
        )
    issuer = urlsplit(oidc.issuer)
    if issuer.scheme == "http" and not is_loopback(issuer.hostname):
        parsed.add(
            (*_OIDC, "issuer"),
            "insecure_transport",
            f"issuer is plain http to {issuer.hostname}: sign-ins must go over https (http "
            "only to a loopback address: localhost, 127.0.0.0/8, ::1)",
        )
    if "openid" not in oidc.scopes:
        parsed.add(
            (*_OIDC, "scopes"),
            "oidc_scopes",
            "scopes must include openid: without it the provider sends no ID token",
        )


def check_on_call(parsed: Parsed, shaped: Shaped) -> None:
    """A level that passes on call needs PagerDuty named; its API over https (or loopback)."""
    top = shaped.top
    pagerduty = top.on_call.pagerduty if top is not None else None
    for template in shaped.templates:
        for index, level in enumerate(template.doc.approval):
            if level.auto_approve is not None and pagerduty is None:
                parsed.add(
                    (*template.path, "approval", index, "auto_approve"),
                    "pagerduty_not_configured",
                    "this level passes while the requester is on call, but the model names no "
                    "PagerDuty: add on_call: {pagerduty: {token_env}}",
                )
    if pagerduty is not None and urlsplit(pagerduty.api_url).scheme != "https":
        parsed.add(
            ("on_call", "pagerduty", "api_url"),
            "insecure_transport",
            "api_url must be https: the request carries sekisho's PagerDuty key (and "
            "PagerDuty's client speaks nothing else)",
        )


def check_tickets(parsed: Parsed, shaped: Shaped) -> None:
    """A parameter checked in Jira needs Jira named (`tickets.jira`), over https (or http on
    loopback): the check sends sekisho's Jira token."""
    top = shaped.top
    jira = top.tickets.jira if top is not None else None
    for template in shaped.templates:
        for index, param in enumerate(template.doc.parameters):
            if param.jira and jira is None:
                parsed.add(
                    (*template.path, "parameters", index, "jira"),
                    "jira_not_configured",
                    f"{param.name} is checked in Jira, but the model names no Jira: add "
                    "tickets: {jira: {url, token_env}}",
                )
    if jira is not None:
        parts = urlsplit(jira.url)
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            parsed.add(
                ("tickets", "jira", "url"),
                "insecure_transport",
                f"url is plain http to {parts.hostname}: sekisho's Jira token would cross the "
                "network in clear text; use https (http only to a loopback address)",
            )
