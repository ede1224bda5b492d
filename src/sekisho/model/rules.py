"""Every rule id an access-model problem can carry, with what it means.

The ids are stable: scripts and CI filter on them. `docs/model.md` lists the same ids, and a
test keeps the two in step.
"""

from __future__ import annotations

RULES: dict[str, str] = {
    # Reading the file
    "file": "the file could not be read, or is not UTF-8 text",
    "file_too_large": "the file is larger than 1 MiB",
    "yaml_syntax": "the text is not valid YAML, or holds more than one document",
    "yaml_tag": "an explicit YAML tag (!!python/..., !custom) that a model does not use",
    "yaml_too_complex": "aliases expand to too many values, refer to themselves, or nest too deep",
    "duplicate_key": "the same key twice in one mapping",
    # Shape of each entry
    "unknown_field": "a field this kind of entry does not have (often a typo)",
    "wrong_type": "a value of the wrong type (text, number, true/false, list, mapping)",
    "required": "a required field is missing or empty",
    "invalid_choice": "a value outside a fixed set (kind, action, protocol, provider.tag_format)",
    "invalid_value": "a value Pydantic rejected for another reason",
    # Values
    "unsupported_version": "version is not 1",
    "name_format": "a name with characters other than letters, digits and ._@+-, or too long",
    "max_length": "a text longer than allowed",
    "no_control_characters": "a text with control or bidi-override characters",
    "duration_format": "a duration not written like 2h30m, 90m, 1d",
    "duration_range": "a duration longer than a year",
    "duration_positive": "a duration of zero",
    "iana_zone": "settings.timezone is not an IANA time zone",
    "role_session_range": "a role's max_session outside 15m..12h",
    "aws_account_id_format": "aws_account_id is not 12 digits",
    "host_format": "a target's host is neither an IP address nor a DNS host name",
    "dns_name_format": "a target's dns_name is not a DNS host name",
    "port_range": "a target's port outside 1..65535",
    "email_format": "a user's email is not an e-mail address",
    "role_ref_format": "a role reference not written ACCOUNT/ROLE",
    "invalid_pattern": "a parameter's pattern is not a regular expression",
    "min_approvals_range": "min_approvals below 1",
    "aws_region_format": "provider.region is not an AWS region name",
    "url_format": "a URL that is not http:// or https://",
    "role_arn_format": "provider.role_arn or an account's broker_role_arn is not a role ARN",
    "policy_arn_format": "a role's managed_policies entry is not an IAM policy ARN",
    "env_name_format": "a channel's secret_env, url_env or password_env is not a variable name",
    "sns_topic_arn_format": "an sns channel's topic_arn is not an SNS topic ARN",
    "timeout_range": "a channel's timeout outside 1s..60s",
    "unknown_event": "a route names an event sekisho does not send",
    "jwks_uri_transport": "shared_signals.receive.jwks_uri is http to a host not on loopback",
    "lock_for_range": "shared_signals.receive.lock_for outside 1m..90d",
    "step_up_within_range": "a template's step_up.within outside 1m..12h",
    "slack_channel_format": "a slack_app channel's slack_channel is not a Slack channel ID",
    "slack_user_format": "a user's slack_id is not a Slack user ID",
    "jira_not_configured": "a parameter is checked in Jira but the model has no tickets.jira",
    "pagerduty_id_format": "an approval level's auto_approve.on_call is not a PagerDuty ID",
    "pagerduty_not_configured": "a level passes on call but the model has no on_call.pagerduty",
    "extend_times_range": "a template's extend.times outside 1..100",
    "oidc_scopes": "identity.oidc.scopes does not include openid",
    # Names defined twice
    "duplicate_account": "two accounts with one name",
    "duplicate_role": "two roles with one name in one account",
    "duplicate_target": "two targets with one name",
    "duplicate_user": "two users with one name",
    "duplicate_group": "two groups with one name",
    "duplicate_template": "two templates with one name",
    "duplicate_change_info": "two change_info sections with one name in one template",
    "duplicate_parameter": "two parameters with one name in one template",
    "duplicate_channel": "two notification channels with one name",
    # References
    "unknown_account": "a target names an account that is not defined",
    "unknown_role": "assume names a role that is not defined",
    "unknown_target": "connect names a target that is not defined",
    "unknown_template": "approve or a route names a template that is not defined",
    "unknown_user": "members names a user that is not defined",
    "unknown_group": "eligibility or approval names a group that is not defined",
    "unknown_channel": "a route names a channel that is not defined",
    # Access rules
    "work_group_members": "a work group lists members (only approved requests fill it)",
    "work_group_privilege": "a work group carries approve, audit, lock or admin",
    "work_group_idp_groups": "a work group takes members from the identity provider",
    "eligibility_target_standing": "eligibility groups names a standing group",
    "eligibility_requester_work": "eligibility requesters names a work group",
    "template_without_approvers": "a template with no approval level that is not auto_approve",
    "template_without_eligibility": "a grant template nobody is eligible to use",
    "approver_lacks_permission": (
        "an approval level's group is a work group or lacks approve for the template"
    ),
    "approvers_too_few": "an approver group has fewer members than min_approvals",
    "extend_not_grant": "a remove template has extend (only grants are extended)",
    "extend_total_range": "a template's extend.total is longer than its max_duration",
    "provider_region_required": "the aws_iam provider without provider.region",
    "aws_account_id_required": (
        "with the aws_iam provider, an account that has roles but no aws_account_id"
    ),
    # Notifications
    "secret_in_model": "a channel carries a secret (a key, a password, a Slack webhook URL)",
    "channel_setting": "a setting that does not belong to the channel's type",
    "insecure_transport": "a channel would send in clear text off this machine",
    "route_never_matches": "a route limited to templates names a report event",
    "emergency_remove_template": "a remove template has an emergency section",
    "emergency_without_approvers": "an emergency template has no approvers to review its uses",
    "emergency_max_duration": "emergency.max_duration longer than the template's max_duration",
    "emergency_ticket_parameter": "emergency.ticket names no parameter of the template",
    "emergency_notify_work_group": "emergency.notify names a work group",
    "approval_impossible": (
        "an eligible requester's request could never collect its approvals, since nobody "
        "approves their own request and each person decides once"
    ),
}
