"""Loading files and text: the shipped example, YAML-level problems, many problems at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sekisho.domain.access import AccessModel, GroupKind, Protocol, TemplateAction
from sekisho.domain.errors import InvalidModel
from sekisho.model import check_text, load_file, load_text

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jump-account.yaml"


@pytest.fixture(scope="module")
def example() -> AccessModel:
    return load_file(EXAMPLE)


def test_the_example_is_valid() -> None:
    assert check_text(EXAMPLE.read_text("utf-8"), str(EXAMPLE)) == []


def test_the_example_loads_from_a_str_path_too() -> None:
    assert load_file(str(EXAMPLE)) == load_file(EXAMPLE)


def test_example_settings(example: AccessModel) -> None:
    assert example.settings.timezone == "Asia/Tokyo"
    assert example.settings.approval_timeout == timedelta(days=3)


def test_example_accounts_and_roles(example: AccessModel) -> None:
    assert [a.name for a in example.accounts] == ["jump", "dev", "stg", "prod"]
    assert example.account("jump") is not None
    assert example.account("jump").roles == ()  # type: ignore[union-attr]
    assert example.account("prod").aws_account_id == "444444444444"  # type: ignore[union-attr]
    assert len(list(example.roles())) == 9
    leader = example.role("prod/Prod_LeaderRole")
    assert leader is not None
    assert leader.max_session == timedelta(hours=1)
    readonly = example.role("prod/Prod_ReadOnlyRole")
    assert readonly is not None
    assert readonly.max_session == timedelta(hours=1)  # the default
    assert readonly.description == "Read only (no S3 object reads)"


def test_example_targets(example: AccessModel) -> None:
    console = example.target("prod-admin-console")
    assert console is not None
    assert (console.host, console.port, console.protocol) == ("127.0.0.1", 8643, Protocol.HTTPS)
    assert console.dns_name == "admin.prod.internal"
    assert console.account == "prod"
    assert console.idle_timeout == timedelta(minutes=15)
    bastion = example.target("prod-bastion")
    assert bastion is not None
    assert (bastion.protocol, bastion.dns_name, bastion.max_session) == (
        Protocol.TCP,
        None,
        timedelta(hours=8),
    )


def test_example_groups(example: AccessModel) -> None:
    standing = [g.name for g in example.groups if g.kind is GroupKind.STANDING]
    work = [g.name for g in example.groups if g.kind is GroupKind.WORK]
    assert standing == [
        "JumpAdminGroup",
        "LeaderGroup",
        "MemberGroup",
        "ChangeApprovalGroup",
        "AuditGroup",
        "SecurityGroup",
    ]
    security = example.group("SecurityGroup")
    assert security is not None
    assert security.permissions.lock
    assert example.may_lock("security01")
    assert example.may_lock("admin01")  # admins may too
    assert not example.may_lock("auditor01")
    assert work == ["ProdLeaderWorkGroup", "ProdMemberWorkGroup"]
    for name in work:
        group = example.group(name)
        assert group is not None
        assert group.members == frozenset()
    assert example.group("LeaderGroup").members == {"leader01", "leader02"}  # type: ignore[union-attr]
    assert example.is_admin("admin01")
    assert example.is_auditor("auditor01")
    assert not example.is_admin("auditor01")
    assert not example.is_auditor("member01")


def test_example_prod_member_and_leader_roles_only_through_work_groups(
    example: AccessModel,
) -> None:
    for ref in ("prod/Prod_MemberRole", "prod/Prod_LeaderRole"):
        holders = {g.name: g.kind for g in example.groups if ref in g.permissions.assume}
        assert holders, ref
        assert set(holders.values()) == {GroupKind.WORK}, ref
    for target in ("prod-bastion", "prod-admin-console"):
        holders = {g.name: g.kind for g in example.groups if target in g.permissions.connect}
        assert set(holders.values()) == {GroupKind.WORK}, target


def test_example_templates(example: AccessModel) -> None:
    add = example.template("AddUserToGroup")
    remove = example.template("RemoveUserFromGroup")
    assert add is not None
    assert remove is not None
    assert (add.action, remove.action) == (TemplateAction.GRANT, TemplateAction.REMOVE)
    assert add.max_duration == timedelta(hours=8)
    assert not add.auto_approve
    assert [(a.approvers, a.min_approvals) for a in add.approval] == [("ChangeApprovalGroup", 1)]
    assert [c.name for c in add.change_info] == ["target", "change", "impact", "plan", "rollback"]
    required = {c.name: c.required for c in add.change_info}
    assert required == {
        "target": True,
        "change": True,
        "impact": False,
        "plan": False,
        "rollback": True,
    }
    (ticket,) = add.parameters
    assert (ticket.name, ticket.required, ticket.pattern) == ("ticket", False, "[A-Z]+-[0-9]+")
    assert add.requestable_groups({"MemberGroup"}) == {"ProdMemberWorkGroup"}
    assert add.requestable_groups({"LeaderGroup"}) == {"ProdLeaderWorkGroup", "ProdMemberWorkGroup"}
    assert {g.name for g in example.approver_groups("AddUserToGroup")} == {"ChangeApprovalGroup"}


def test_example_users(example: AccessModel) -> None:
    assert [u.name for u in example.users] == [
        "admin01",
        "leader01",
        "leader02",
        "member01",
        "member02",
        "auditor01",
        "security01",
    ]
    user = example.user("auditor01")
    assert user is not None
    assert (user.display_name, user.email) == ("Security Auditor", "auditor01@example.com")


# --- Whole-file problems -------------------------------------------------------------------


def test_a_missing_file_is_one_problem_on_line_zero(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InvalidModel) as caught:
        load_file(missing)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.rule) == (str(missing), 0, "file")
    assert str(missing) in problem.message


def test_a_directory_is_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidModel) as caught:
        load_file(tmp_path)
    assert [(p.line, p.rule) for p in caught.value.problems] == [(0, "file")]


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\nusers:\n  - {name: jos\xe9}\n".encode("latin-1"))
    with pytest.raises(InvalidModel) as caught:
        load_file(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.rule) == (0, "file")
    assert "line 3" in problem.message


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    assert load_file(path) == load_file(EXAMPLE)


def test_a_file_over_one_mib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\n" + "# padding\n" * 120_000, "utf-8")
    with pytest.raises(InvalidModel) as caught:
        load_file(path)
    assert [(p.line, p.rule) for p in caught.value.problems] == [(0, "file_too_large")]
    # Text given directly gets the same limit.
    assert [p.rule for p in check_text(path.read_text("utf-8"))] == ["file_too_large"]


def test_an_empty_file() -> None:
    assert [(p.rule, p.line) for p in check_text("")] == [("required", 1)]
    assert [(p.rule, p.line) for p in check_text("# only a comment\n")] == [("required", 1)]


def test_a_top_level_list_is_the_wrong_type() -> None:
    assert [(p.rule, p.line) for p in check_text("- version: 1\n")] == [("wrong_type", 1)]


def test_a_syntax_error_points_at_its_line() -> None:
    text = "version: 1\nusers:\n  - name: alice\n    display_name: [Alice\n  - name: bob\n"
    (problem,) = check_text(text)
    assert problem.rule == "yaml_syntax"
    assert problem.line == 5
    assert "line 4" in problem.message  # where the unclosed flow sequence started


def test_a_second_document_is_a_syntax_error() -> None:
    text = "version: 1\n---\nversion: 1\n"
    (problem,) = check_text(text)
    assert (problem.rule, problem.line) == ("yaml_syntax", 2)
    assert "one document" in problem.message


def test_a_nul_character_is_a_syntax_error_on_its_line() -> None:
    (problem,) = check_text("version: 1\nusers:\n  - {name: a\x00b}\n")
    assert (problem.rule, problem.line) == ("yaml_syntax", 3)


def test_alias_expansion_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 7):
        refs = ", ".join([f"*a{n - 1}"] * 10)
        lines.append(f"a{n}: &a{n} [{refs}]")
    (problem,) = check_text("\n".join(lines) + "\n")
    assert problem.rule == "yaml_too_complex"


def test_deep_nesting_is_bounded() -> None:
    text = "version: 1\nusers: " + "[" * 100 + "]" * 100 + "\n"
    assert [p.rule for p in check_text(text)] == ["yaml_too_complex"]


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    text = "version: 1\nusers:\n  - {name: alice}\nusers:\n  - {name: bob}\n"
    (problem,) = check_text(text)
    assert (problem.rule, problem.line, problem.path) == ("duplicate_key", 4, "users")
    assert "line 2" in problem.message


def test_duplicate_keys_in_a_nested_mapping() -> None:
    text = (
        "version: 1\n"
        "groups:\n"
        "  - name: G\n"
        "    kind: standing\n"
        "    permissions:\n"
        "      audit: true\n"
        "      audit: false\n"
    )
    (problem,) = check_text(text)
    assert (problem.rule, problem.line) == ("duplicate_key", 7)
    assert problem.path == "groups[0].permissions.audit"


def test_merge_keys_fill_in_defaults() -> None:
    text = (
        "version: 1\n"
        "targets:\n"
        "  - &console {name: a, host: 10.0.0.1, port: 443, protocol: https}\n"
        "  - <<: *console\n"
        "    name: b\n"
        "    port: 8443\n"
    )
    model = load_text(text)
    assert [(t.name, t.port, t.protocol) for t in model.targets] == [
        ("a", 443, Protocol.HTTPS),
        ("b", 8443, Protocol.HTTPS),
    ]


# --- Many problems at once -----------------------------------------------------------------

SEVERAL = """\
version: 1
settings: {timezone: Asia/Tokio}
accounts:
  - name: prod
    roles:
      - {name: Admin, max_session: 13h}
targets:
  - {name: console, host: 10.0.0.1, port: 0}
users:
  - {name: alice}
  - {name: alice}
groups:
  - name: Work
    kind: work
    member: [alice]
    members: [zed]
    permissions: {assume: [prod/Admin], connect: [consol], admin: true}
  - name: Devs
    kind: standing
    members: [alice]
templates:
  - name: Join
    action: grant
    eligibility: [{requesters: [Devs], groups: [Work]}]
"""


def test_a_file_with_several_problems_reports_all_of_them_sorted_by_line() -> None:
    with pytest.raises(InvalidModel) as caught:
        load_text(SEVERAL, "several.yaml")
    found = [(p.line, p.rule) for p in caught.value.problems]
    assert found == [
        (2, "iana_zone"),
        (6, "role_session_range"),
        (8, "port_range"),
        (11, "duplicate_user"),
        (15, "unknown_field"),
        (16, "work_group_members"),
        (16, "unknown_user"),
        (17, "work_group_privilege"),
        (17, "unknown_target"),
        (22, "template_without_approvers"),
    ]
    assert all(p.file == "several.yaml" for p in caught.value.problems)
    assert check_text(SEVERAL, "several.yaml") == caught.value.problems
    # The exception's message lists them all, one per line.
    assert str(caught.value).count("\n") == len(found) - 1


def test_invalid_model_is_a_sekisho_error_with_a_stable_code() -> None:
    with pytest.raises(InvalidModel) as caught:
        load_text("version: 2\n")
    assert caught.value.code == "invalid-model"
