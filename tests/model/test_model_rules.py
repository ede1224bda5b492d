"""One case per rule: a small model breaking exactly that rule, on the line marked `# <-`."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from textwrap import dedent, indent

import pytest

from sekisho.domain.access import Emergency
from sekisho.domain.errors import ModelProblem
from sekisho.model import RULES, check_text, load_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "model.md"

# A small valid model; each case replaces one or more sections.
BASE: dict[str, str] = {
    "head": """\
        version: 1
        settings:
          timezone: UTC
    """,
    "accounts": """\
        accounts:
          - name: prod
            aws_account_id: "444444444444"
            roles:
              - name: Admin
    """,
    "targets": """\
        targets:
          - {name: console, host: 10.0.0.1, port: 443, account: prod}
    """,
    "users": """\
        users:
          - {name: alice}
          - {name: bob}
          - {name: carol}
    """,
    "groups": """\
        groups:
          - name: Devs
            kind: standing
            members: [alice]
          - name: Approvers
            kind: standing
            members: [bob, carol]
            permissions: {approve: [Join]}
          - name: ProdWork
            kind: work
            permissions: {assume: [prod/Admin], connect: [console]}
    """,
    "templates": """\
        templates:
          - name: Join
            action: grant
            eligibility:
              - {requesters: [Devs], groups: [ProdWork]}
            approval:
              - {approvers: Approvers}
    """,
}


SIGNALS = """\
version: 1
shared_signals:
  receive:
    issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
"""

OIDC = """\
version: 1
identity:
  oidc:
    issuer: https://login.example.com
    client_id: sekisho
    client_secret_env: SEKISHO_OIDC_SECRET
"""


def model(**sections: str) -> str:
    unknown = set(sections) - set(BASE)
    assert not unknown, unknown
    return "".join(dedent(sections.get(name, text)) for name, text in BASE.items())


def marked_line(text: str) -> int:
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if "# <-" in line]
    assert len(lines) == 1, "mark exactly one line with # <-"
    return lines[0]


def found(text: str) -> list[tuple[str, int]]:
    return [(p.rule, p.line) for p in check_text(text, "case.yaml")]


def groups_with(extra: str) -> str:
    """The base model with more groups appended."""
    return model(groups=dedent(BASE["groups"]) + indent(dedent(extra), "  "))


def template_with(body: str) -> str:
    """A templates section whose one template, Join (grant), has `body` as its other fields."""
    return "templates:\n  - name: Join\n    action: grant\n" + indent(dedent(body), "    ")


NOTIFY_CHANNEL = """\
    - name: team
      type: webhook
      url: https://hooks.example.com/sekisho
      secret_env: SEKISHO_WEBHOOK_KEY
"""
NOTIFY_ROUTE = "- {events: [approval.needed], channels: [team]}\n"


def notified(channels: str = NOTIFY_CHANNEL, routes: str = NOTIFY_ROUTE) -> str:
    """The base model with a notifications section (one webhook channel, one route)."""
    return (
        model()
        + "notifications:\n  channels:\n"
        + indent(dedent(channels), "    ")
        + "  routes:\n"
        + indent(dedent(routes), "    ")
    )


CASES: list[tuple[str, str]] = [
    # Reading the file
    ("yaml_syntax", "version: 1\nusers:\n\t- name: x  # <-\n"),
    (
        "yaml_tag",
        model(
            users="""\
            users:
              - {name: alice}
              - {name: bob, display_name: !!python/object:os.system x}  # <-
              - {name: carol}
            """
        ),
    ),
    ("yaml_too_complex", "version: 1\nusers: &u  # <-\n  - *u\n"),
    (
        "duplicate_key",
        model(
            users="""\
            users:
              - name: alice
                display_name: Alice
                display_name: Alice Again  # <-
              - {name: bob}
              - {name: carol}
            """
        ),
    ),
    # Shape
    (
        "unknown_field",
        model(
            users="""\
            users:
              - {name: alice}
              - {name: bob, mail: bob@example.com}  # <-
              - {name: carol}
            """
        ),
    ),
    ("wrong_type", model(head="version: 1\nsettings:\n  timezone: 9  # <-\n")),
    (
        "required",
        model(
            targets="""\
            targets:
              - {name: console, port: 443}  # <-
            """
        ),
    ),
    (
        "invalid_choice",
        model(
            targets="""\
            targets:
              - {name: console, host: 10.0.0.1, port: 443, protocol: ssh}  # <-
            """
        ),
    ),
    # Values
    ("unsupported_version", model(head="version: 2  # <-\n")),
    (
        "name_format",
        model(
            users="""\
            users:
              - {name: alice}
              - {name: bob}
              - {name: carol}
              - {name: "dave smith"}  # <-
            """
        ),
    ),
    (
        "max_length",
        model(
            users=f"""\
            users:
              - {{name: alice}}
              - {{name: bob, display_name: {"x" * 201}}}  # <-
              - {{name: carol}}
            """
        ),
    ),
    (
        "no_control_characters",
        model(
            users="""\
            users:
              - {name: alice}
              - {name: bob, display_name: "bob\\u202egnp.exe"}  # <-
              - {name: carol}
            """
        ),
    ),
    ("duration_format", model(head="version: 1\nsettings:\n  approval_timeout: 3 days  # <-\n")),
    ("duration_range", model(head="version: 1\nsettings:\n  approval_timeout: 400d  # <-\n")),
    ("duration_positive", model(head="version: 1\nsettings:\n  approval_timeout: 0m  # <-\n")),
    ("iana_zone", model(head="version: 1\nsettings:\n  timezone: Asia/Tokio  # <-\n")),
    (
        "role_session_range",
        model(
            accounts="""\
            accounts:
              - name: prod
                roles:
                  - name: Admin
                    max_session: 13h  # <-
            """
        ),
    ),
    (
        "aws_account_id_format",
        model(
            accounts="""\
            accounts:
              - name: prod
                aws_account_id: "4444"  # <-
                roles: [{name: Admin}]
            """
        ),
    ),
    (
        "aws_region_format",
        model(head="version: 1\nprovider:\n  type: aws_iam\n  region: Tokyo  # <-\n"),
    ),
    (
        "url_format",
        model(head="version: 1\nprovider:\n  region: us-east-1\n  endpoint_url: ftp://x  # <-\n"),
    ),
    (
        "role_arn_format",
        model(head="version: 1\nprovider:\n  role_arn: arn:aws:iam::1:user/x  # <-\n"),
    ),
    (
        "policy_arn_format",
        model(
            accounts="""\
            accounts:
              - name: prod
                aws_account_id: "444444444444"
                roles:
                  - name: Admin
                    managed_policies: [ReadOnlyAccess]  # <-
            """
        ),
    ),
    (
        "provider_region_required",
        model(head="version: 1\nprovider:\n  type: aws_iam  # <-\n"),
    ),
    (
        "aws_account_id_required",
        model(
            head="version: 1\nprovider:\n  type: aws_iam\n  region: us-east-1\n",
            accounts="""\
            accounts:
              - name: prod  # <-
                roles: [{name: Admin}]
            """,
        ),
    ),
    (
        "host_format",
        model(
            targets="""\
            targets:
              - name: console
                host: "db host"  # <-
                port: 443
            """
        ),
    ),
    (
        "dns_name_format",
        model(
            targets="""\
            targets:
              - name: console
                host: 10.0.0.1
                port: 443
                dns_name: admin_console.prod.internal  # <-
            """
        ),
    ),
    (
        "port_range",
        model(
            targets="""\
            targets:
              - name: console
                host: 10.0.0.1
                port: 70000  # <-
            """
        ),
    ),
    (
        "email_format",
        model(
            users="""\
            users:
              - {name: alice, email: alice-at-example.com}  # <-
              - {name: bob}
              - {name: carol}
            """
        ),
    ),
    (
        "role_ref_format",
        groups_with(
            """\
            - name: More
              kind: standing
              permissions: {assume: [Admin]}  # <-
            """
        ),
    ),
    (
        "invalid_pattern",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
                parameters:
                  - {name: ticket, pattern: "[A-Z+"}  # <-
            """
            )
        ),
    ),
    (
        "min_approvals_range",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval:
                  - {approvers: Approvers, min_approvals: 0}  # <-
            """
            )
        ),
    ),
    (
        "step_up_within_range",
        model(
            templates=template_with(
                """                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
                step_up: {within: 30s, factor: passkey}  # <-
            """
            )
        ),
    ),
    (
        "extend_times_range",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
                extend: {times: 0, total: 1h}  # <-
            """
            )
        ),
    ),
    # Names defined twice
    (
        "duplicate_account",
        model(
            accounts="""\
            accounts:
              - name: prod
                roles: [{name: Admin}]
              - name: prod  # <-
            """
        ),
    ),
    (
        "duplicate_role",
        model(
            accounts="""\
            accounts:
              - name: prod
                roles:
                  - name: Admin
                  - name: Admin  # <-
            """
        ),
    ),
    (
        "duplicate_target",
        model(
            targets="""\
            targets:
              - {name: console, host: 10.0.0.1, port: 443}
              - {name: console, host: 10.0.0.2, port: 443}  # <-
            """
        ),
    ),
    (
        "duplicate_user",
        model(
            users="""\
            users:
              - {name: alice}
              - {name: bob}
              - {name: carol}
              - {name: alice}  # <-
            """
        ),
    ),
    (
        "duplicate_group",
        groups_with(
            """\
            - name: Devs  # <-
              kind: standing
            """
        ),
    ),
    (
        "duplicate_template",
        model(
            templates="""\
            templates:
              - name: Join
                action: grant
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
              - name: Join  # <-
                action: remove
                approval: [{approvers: Approvers}]
            """
        ),
    ),
    (
        "duplicate_change_info",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
                change_info:
                  - {name: plan, title: Work plan}
                  - {name: plan, title: Rollback plan}  # <-
            """
            )
        ),
    ),
    (
        "duplicate_parameter",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
                parameters:
                  - {name: ticket}
                  - {name: ticket, required: true}  # <-
            """
            )
        ),
    ),
    # References
    (
        "unknown_account",
        model(
            targets="""\
            targets:
              - name: console
                host: 10.0.0.1
                port: 443
                account: prd  # <-
            """
        ),
    ),
    (
        "unknown_role",
        groups_with(
            """\
            - name: More
              kind: standing
              permissions:
                assume:
                  - prod/Admin
                  - prod/Adnim  # <-
            """
        ),
    ),
    (
        "unknown_target",
        groups_with(
            """\
            - name: More
              kind: standing
              permissions:
                connect: [consol]  # <-
            """
        ),
    ),
    (
        "unknown_template",
        groups_with(
            """\
            - name: More
              kind: standing
              permissions:
                approve: [Leave]  # <-
            """
        ),
    ),
    (
        "unknown_user",
        groups_with(
            """\
            - name: More
              kind: standing
              members:
                - alice
                - dave  # <-
            """
        ),
    ),
    (
        "unknown_group",
        model(
            templates=template_with(
                """\
                eligibility:
                  - requesters: [Devs]
                    groups: [ProdWrok]  # <-
                approval: [{approvers: Approvers}]
            """
            )
        ),
    ),
    # Access rules
    (
        "work_group_members",
        groups_with(
            """\
            - name: HotWork
              kind: work
              members: [alice]  # <-
            """
        ),
    ),
    (
        "work_group_privilege",
        groups_with(
            """\
            - name: HotWork
              kind: work
              permissions:
                assume: [prod/Admin]
                admin: true  # <-
            """
        ),
    ),
    (
        "work_group_idp_groups",
        groups_with(
            """\
            - name: HotWork
              kind: work
              idp_groups: [prod-engineers]  # <-
            """
        ),
    ),
    (
        "eligibility_target_standing",
        model(
            templates=template_with(
                """\
                eligibility:
                  - requesters: [Devs]
                    groups: [ProdWork, Approvers]  # <-
                approval: [{approvers: Approvers}]
            """
            )
        ),
    ),
    (
        "eligibility_requester_work",
        model(
            templates=template_with(
                """\
                eligibility:
                  - requesters: [ProdWork]  # <-
                    groups: [ProdWork]
                approval: [{approvers: Approvers}]
            """
            )
        ),
    ),
    (
        "template_without_approvers",
        model(
            templates="""\
            templates:
              - name: Join  # <-
                action: grant
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
            """
        ),
    ),
    (
        "template_without_eligibility",
        model(
            templates="""\
            templates:
              - name: Join  # <-
                action: grant
                approval: [{approvers: Approvers}]
            """
        ),
    ),
    (
        "approver_lacks_permission",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval:
                  - approvers: Devs  # <-
            """
            )
        ),
    ),
    (
        "approvers_too_few",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval:
                  - approvers: Approvers
                    min_approvals: 3  # <-
            """
            )
        ),
    ),
    (
        "approval_impossible",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Approvers], groups: [ProdWork]}]
                approval:  # <-
                  - {approvers: Approvers, min_approvals: 2}
            """
            )
        ),
    ),
    (
        "emergency_remove_template",
        model(
            templates="""\
        templates:
          - name: Join
            action: remove
            approval: [{approvers: Approvers}]
            parameters: [{name: ticket}]
            emergency: {max_duration: 1h, review_within: 1d}  # <-
        """
        ),
    ),
    (
        "emergency_without_approvers",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                auto_approve: true
                parameters: [{name: ticket}]
                emergency: {max_duration: 1h, review_within: 1d}  # <-
            """
            )
        ),
    ),
    (
        "emergency_max_duration",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
                max_duration: 2h
                parameters: [{name: ticket}]
                emergency: {max_duration: 3h, review_within: 1d}  # <-
            """
            )
        ),
    ),
    (
        "emergency_ticket_parameter",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
                parameters: [{name: change}]
                emergency: {max_duration: 1h, review_within: 1d, ticket: chg}  # <-
            """
            )
        ),
    ),
    (
        "emergency_notify_work_group",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
                parameters: [{name: ticket}]
                emergency: {max_duration: 1h, review_within: 1d, notify: [ProdWork]}  # <-
            """
            )
        ),
    ),
    (
        "extend_total_range",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
                max_duration: 4h
                extend:
                  times: 2
                  total: 5h  # <-
            """
            )
        ),
    ),
    (
        "extend_not_grant",
        model(
            templates="""\
            templates:
              - name: Join
                action: grant
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
              - name: Leave
                action: remove
                auto_approve: true
                extend: {times: 1, total: 1h}  # <-
            """
        ),
    ),
    # Notifications
    (
        "env_name_format",
        notified(NOTIFY_CHANNEL.replace("SEKISHO_WEBHOOK_KEY", "my-key  # <-")),
    ),
    (
        "sns_topic_arn_format",
        notified(
            NOTIFY_CHANNEL + "    - {name: sns, type: sns, topic_arn: 'arn:aws:sns:x:1:t'}  # <-\n"
        ),
    ),
    ("timeout_range", notified(NOTIFY_CHANNEL + "      timeout: 2m  # <-\n")),
    (
        "jira_not_configured",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval: [{approvers: Approvers}]
                parameters:
                  - {name: ticket, jira: true}  # <-
            """
            )
        ),
    ),
    (
        "pagerduty_id_format",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval:
                  - approvers: Approvers
                    auto_approve: {on_call: daily-rotation}  # <-
            """
            )
        )
        + "on_call:\n  pagerduty: {token_env: SEKISHO_PAGERDUTY_TOKEN}\n",
    ),
    (
        "pagerduty_not_configured",
        model(
            templates=template_with(
                """\
                eligibility: [{requesters: [Devs], groups: [ProdWork]}]
                approval:
                  - approvers: Approvers
                    auto_approve: {on_call: PI7DH85}  # <-
            """
            )
        ),
    ),
    (
        "slack_channel_format",
        notified(
            """\
            - name: team
              type: slack_app
              slack_channel: "#prod-approvals"  # <-
              bot_token_env: SEKISHO_SLACK_BOT_TOKEN
              signing_secret_env: SEKISHO_SLACK_SIGNING_SECRET
            """
        ),
    ),
    (
        "slack_user_format",
        model(
            users="""\
            users:
              - {name: alice, slack_id: alice}  # <-
              - {name: bob}
              - {name: carol}
            """
        ),
    ),
    ("unknown_event", notified(routes="- {events: [grant.endd], channels: [team]}  # <-\n")),
    (
        "jwks_uri_transport",
        model(
            head=SIGNALS.replace(
                "https://idp.example.com/jwks", "http://idp.example.com/jwks  # <-"
            )
        ),
    ),
    ("lock_for_range", model(head=SIGNALS + "    lock_for: 10s  # <-\n")),
    (
        "duplicate_channel",
        notified(NOTIFY_CHANNEL + NOTIFY_CHANNEL.replace("team", "team  # <-")),
    ),
    ("unknown_channel", notified(routes="- {events: ['*'], channels: [teem]}  # <-\n")),
    ("secret_in_model", notified(NOTIFY_CHANNEL + "      secret: abc123  # <-\n")),
    ("channel_setting", notified(NOTIFY_CHANNEL + "      host: smtp.example.com  # <-\n")),
    (
        "insecure_transport",
        notified(
            NOTIFY_CHANNEL.replace(
                "https://hooks.example.com/sekisho", "http://hooks.example.com/x  # <-"
            )
        ),
    ),
    ("oidc_scopes", model(head=OIDC + "    scopes: [profile, email]  # <-\n")),
    ("secret_in_model", model(head=OIDC + "    client_secret: s3cr3t  # <-\n")),
    (
        "insecure_transport",
        model(head=OIDC.replace("https://login.example.com", "http://login.example.com  # <-")),
    ),
    (
        "route_never_matches",
        notified(routes="- {events: [expiry.report], channels: [team], templates: [Join]}  # <-\n"),
    ),
]


def test_the_base_model_is_valid() -> None:
    assert check_text(model()) == []


@pytest.mark.parametrize(("rule", "text"), CASES, ids=[rule for rule, _ in CASES])
def test_each_rule_is_reported_on_its_line(rule: str, text: str) -> None:
    assert found(text) == [(rule, marked_line(text))]


def test_every_rule_has_a_case_or_a_dedicated_test() -> None:
    elsewhere = {
        "file",  # test_model_loading: unreadable and non-UTF-8 files
        "file_too_large",  # test_model_loading
        "invalid_value",  # the fallback for Pydantic errors no other rule names
    }
    assert {rule for rule, _ in CASES} | elsewhere == set(RULES)


def test_every_rule_is_documented() -> None:
    docs = DOCS.read_text("utf-8")
    section = docs[docs.index("## Problems and rule ids") : docs.index("## Reachability")]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE)
    assert sorted(documented) == sorted(RULES)


def test_the_documented_example_is_valid() -> None:
    docs = DOCS.read_text("utf-8")
    match = re.search(r"## A short example\n\n```yaml\n(.*?)```", docs, re.DOTALL)
    assert match is not None
    assert check_text(match.group(1), "docs/model.md") == []


def test_a_work_group_as_approver_lacks_permission() -> None:
    text = model(
        templates=template_with(
            """\
            eligibility: [{requesters: [Devs], groups: [ProdWork]}]
            approval:
              - approvers: ProdWork  # <-
            """
        )
    )
    problems = check_text(text)
    assert [(p.rule, p.line) for p in problems] == [
        ("approver_lacks_permission", marked_line(text))
    ]
    assert "work group" in problems[0].message


def test_work_group_privilege_reports_each_privilege() -> None:
    text = groups_with(
        """\
        - name: HotWork
          kind: work
          permissions: {approve: [Join], audit: true, lock: true, admin: true}
        """
    )
    problems = [p for p in check_text(text) if p.rule == "work_group_privilege"]
    assert sorted(p.path for p in problems) == [
        "groups[3].permissions.admin",
        "groups[3].permissions.approve",
        "groups[3].permissions.audit",
        "groups[3].permissions.lock",
    ]


def test_a_requester_in_a_two_person_approver_group_can_still_be_approved() -> None:
    # bob asks, carol approves: separation of duties holds with one approval needed.
    text = model(
        templates=template_with(
            """\
            eligibility: [{requesters: [Approvers], groups: [ProdWork]}]
            approval: [{approvers: Approvers, min_approvals: 1}]
            """
        )
    )
    assert check_text(text) == []


def test_approval_impossible_counts_each_person_once_across_levels() -> None:
    # Two levels, each needing one of bob/carol; alice asks: bob and carol suffice.
    ok = model(
        templates=template_with(
            """\
            eligibility: [{requesters: [Devs], groups: [ProdWork]}]
            approval:
              - {approvers: Approvers}
              - {approvers: Approvers}
            """
        )
    )
    assert check_text(ok) == []
    # Three levels from a two-person group: nobody decides twice, so it can never finish.
    stuck = model(
        templates=template_with(
            """\
            eligibility: [{requesters: [Devs], groups: [ProdWork]}]
            approval:
              - {approvers: Approvers}
              - {approvers: Approvers}
              - {approvers: Approvers}
            """
        )
    )
    assert [p.rule for p in check_text(stuck)] == ["approval_impossible"]


def test_auto_approve_needs_no_approvers_and_remove_needs_no_eligibility() -> None:
    text = model(
        templates="""\
        templates:
          - name: Join
            action: grant
            auto_approve: true
            eligibility: [{requesters: [Devs], groups: [ProdWork]}]
          - name: Leave
            action: remove
            approval: [{approvers: Approvers}]
        """
    )
    text = text.replace("approve: [Join]", "approve: [Join, Leave]")
    assert check_text(text) == []


def test_an_emergency_section_loads_with_its_ticket_and_groups() -> None:
    text = model(
        templates=template_with(
            """\
            eligibility: [{requesters: [Devs], groups: [ProdWork]}]
            approval: [{approvers: Approvers}]
            parameters: [{name: ticket, pattern: "INC-[0-9]+"}]
            emergency: {max_duration: 1h, review_within: 2d, notify: [Approvers, Devs]}
            """
        )
    )
    assert check_text(text) == []
    emergency = load_text(text).template("Join").emergency  # type: ignore[union-attr]
    assert emergency == Emergency(timedelta(hours=1), timedelta(days=2), ("Approvers", "Devs"))


def test_unused_roles_and_targets_are_fine() -> None:
    text = model(
        accounts="""\
        accounts:
          - name: prod
            roles: [{name: Admin}, {name: Unused}]
        """,
        targets="""\
        targets:
          - {name: console, host: 10.0.0.1, port: 443}
          - {name: spare, host: spare.internal, port: 5432}
        """,
    )
    assert check_text(text) == []


def test_unknown_field_suggests_the_close_name() -> None:
    text = groups_with(
        """\
        - name: More
          kind: standing
          member: [alice]  # <-
        """
    )
    (problem,) = check_text(text)
    assert (problem.rule, problem.line) == ("unknown_field", marked_line(text))
    assert "did you mean 'members'" in problem.message
    assert problem.path == "groups[3].member"


def test_unknown_references_suggest_the_close_name() -> None:
    text = model(
        templates=template_with(
            """\
            eligibility: [{requesters: [Devs], groups: [ProdWrok]}]
            approval: [{approvers: Approvers}]
            """
        )
    )
    (problem,) = check_text(text)
    assert problem.rule == "unknown_group"
    assert "did you mean 'ProdWork'" in problem.message


def test_an_unquoted_account_id_gets_a_quoting_hint_with_its_source_text() -> None:
    # YAML 1.1 reads 011111111111 as an octal number; the hint must show what was typed.
    text = model(
        accounts="""\
        accounts:
          - name: prod
            aws_account_id: 011111111111  # <-
            roles: [{name: Admin}]
        """
    )
    (problem,) = check_text(text)
    assert (problem.rule, problem.line) == ("wrong_type", marked_line(text))
    assert '"011111111111"' in problem.message


def test_an_empty_required_value_says_so() -> None:
    text = model(
        users="""\
        users:
          - {name: alice}
          - {name: bob}
          - {name: carol}
          - name:  # <-
            display_name: Nobody
        """
    )
    (problem,) = check_text(text)
    assert (problem.rule, problem.line) == ("required", marked_line(text))
    assert "empty" in problem.message


def test_duplicate_names_point_at_the_first_definition() -> None:
    text = model(
        users="""\
        users:
          - {name: alice}
          - {name: bob}
          - {name: carol}
          - {name: bob}
        """
    )
    (problem,) = check_text(text)
    assert problem.rule == "duplicate_user"
    first = next(n for n, line in enumerate(text.splitlines(), 1) if "{name: bob}" in line)
    assert problem.line > first
    assert f"line {first}" in problem.message


def test_a_role_in_an_entry_with_a_shape_problem_still_counts_as_defined() -> None:
    # The account has a bad id, but its role exists: only the id is reported.
    text = model(
        accounts="""\
        accounts:
          - name: prod
            aws_account_id: "12"  # <-
            roles: [{name: Admin}]
        """
    )
    assert found(text) == [("aws_account_id_format", marked_line(text))]


def test_empty_sections_mean_none() -> None:
    text = "version: 1\naccounts:\ntargets:\nusers:\ngroups:\ntemplates:\n"
    assert check_text(text) == []


def test_problem_strings_name_file_line_rule_and_path() -> None:
    text = model(head="version: 2\n")
    (problem,) = check_text(text, "prod.yaml")
    assert str(problem).startswith("prod.yaml:1: unsupported_version: ")
    assert str(problem).endswith("(version)")
    assert isinstance(problem, ModelProblem)
