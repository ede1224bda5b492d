"""The `sekisho` command against a real server: output people read, exit codes scripts read."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from support import ADMIN, code_for

Run = Callable[..., "Result"]  # noqa: F821 - the fixture's Result


def enroll(core: Core, name: str) -> tuple[str, str]:
    e = core.identity.enroll(ADMIN, name)
    return e.password, e.totp_secret


def login(cli: Run, core: Core, server: str, name: str, steps: int = 0) -> None:
    password, secret = enroll(core, name)
    result = cli(
        "--server",
        server,
        "login",
        "--user",
        name,
        "--password-stdin",
        "--otp",
        code_for(core, secret, steps),
        who=name,
        stdin=password + "\n",
    )
    assert result.code == 0, result.err


CREATE = [
    "request",
    "create",
    "--template",
    "AddUserToGroup",
    "--group",
    "ProdMemberWorkGroup",
    "--reason",
    "rotate the key",
    "--info",
    "target=console",
    "--info",
    "change=rotate",
    "--info",
    "rollback=restore",
]


def wait_for(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_the_seed_scenario_by_cli(cli: Run, core: Core, server: str, clock: ManualClock) -> None:
    for name in ("member01", "leader01"):
        login(cli, core, server, name)

    denied = cli("can", "member01", "assume", "prod/Prod_MemberRole", who="member01")
    assert denied.code == 1
    assert "DENIED" in denied.out
    assert "AddUserToGroup" in denied.out

    filed = cli(*CREATE, "--until", "202611291930", "--json", who="member01")
    assert filed.code == 0, filed.err
    request = json.loads(filed.out)
    # 19:30 in Asia/Tokyo (the model's zone) is 10:30 UTC.
    assert request["end_at"].startswith("2026-11-29T10:30:00")

    todo = cli("request", "list", "--to-approve", who="leader01")
    assert todo.code == 0
    assert f"{request['id']}" in todo.out

    approved = cli("request", "approve", str(request["id"]), "--comment", "OK, go", who="leader01")
    assert approved.code == 0, approved.err
    assert "succeeded" in approved.out

    shown = cli("request", "show", str(request["id"]), who="leader01")
    for expected in ("approved at level 1: OK, go", "add_user_to_group", "tag_user", "leader01"):
        assert expected in shown.out

    allowed = cli("can", "member01", "assume", "prod/Prod_MemberRole", who="member01")
    assert allowed.code == 0
    assert "ALLOWED" in allowed.out

    clock.advance(timedelta(hours=1, minutes=30))  # past 10:30 UTC: the scheduler wakes

    wait_for(lambda: core.provider.members("ProdMemberWorkGroup") == frozenset())
    login(cli, core, server, "auditor01")  # tokens last an hour; this one is fresh
    ended = cli("can", "member01", "assume", "prod/Prod_MemberRole", who="auditor01")
    assert ended.code == 1
    assert "DENIED" in ended.out

    story = cli("audit", "list", "--request", str(request["id"]), "--json", who="auditor01")
    actions = [e["action"] for e in json.loads(story.out)]
    assert actions[::-1][:3] == ["request.filed", "request.approved", "grant.activated"]
    assert "grant.expired" in actions
    verified = cli("audit", "verify", who="auditor01")
    assert verified.code == 0
    assert "chain consistent" in verified.out


def test_show_and_list_say_what_the_reader_may_do_next(cli: Run, core: Core, server: str) -> None:
    """The server's allowed actions, each with the command that takes it."""
    for name in ("member01", "leader01", "auditor01"):
        login(cli, core, server, name)
    filed = json.loads(cli(*CREATE, "--for", "2h", "--json", who="member01").out)
    request_id = filed["id"]
    assert filed["allowed_actions"] == ["cancel"]

    approver = cli("request", "show", str(request_id), who="leader01")
    assert f"approve: sekisho request approve {request_id}" in approver.out
    assert f"reject: sekisho request reject {request_id} --comment WHY" in approver.out
    requester = cli("request", "show", str(request_id), who="member01")
    assert f"cancel: sekisho request cancel {request_id}" in requester.out
    assert "approve:" not in requester.out
    auditor = cli("request", "show", str(request_id), who="auditor01")
    assert "nothing now" in auditor.out

    listed = cli("request", "list", "--to-approve", who="leader01")
    assert "You may" in listed.out
    assert "approve, reject" in listed.out

    cli("request", "approve", str(request_id), who="leader01")
    holder = cli("request", "show", str(request_id), who="member01")
    grant_id = json.loads(cli("grant", "list", "--json", who="member01").out)[0]["id"]
    assert f"release: sekisho grant release {grant_id}" in holder.out
    assert "cancel:" not in holder.out
    assert "release" in cli("grant", "list", who="member01").out  # its "You may" column


def test_extend_a_grant_by_cli(cli: Run, core: Core, server: str, clock: ManualClock) -> None:
    for name in ("member01", "leader01"):
        login(cli, core, server, name)
    filed = json.loads(cli(*CREATE, "--for", "2h", "--json", who="member01").out)
    cli("request", "approve", str(filed["id"]), who="leader01")
    grant_id = json.loads(cli("grant", "list", "--json", who="member01").out)[0]["id"]
    holder = cli("request", "show", str(filed["id"]), who="member01")
    assert f"extend: sekisho grant extend {grant_id} --for DURATION --reason WHY" in holder.out

    extend = ["grant", "extend", str(grant_id)]
    for bad, said in [
        (["--for", "1h", "--reason", ""], "reason: say why you need more time"),
        (["--for", "7h", "--reason", "more"], "max_duration"),
        (["--for", "1h", "--until", "202611292100", "--reason", "more"], "exactly one"),
        (["--until", "202611291800", "--reason", "more"], "after_current_end"),
    ]:
        refused = cli(*extend, *bad, who="member01")
        assert (refused.code, said in refused.err) == (1, True), refused.err
    not_theirs = cli(*extend, "--for", "1h", "--reason", "more", who="leader01")
    assert (not_theirs.code, f"no grant #{grant_id}" in not_theirs.err) == (1, True)

    asked = cli(*extend, "--for", "1h", "--reason", "the rotation overran", who="member01")
    assert asked.code == 0, asked.err
    # 11:00 UTC + 1h, shown in the reader's zone; and it waits for the template's approvers.
    assert f"to extend grant #{grant_id} until" in asked.out
    assert "pending_approval" in asked.out
    assert "waiting for approval by ChangeApprovalGroup" in asked.out
    twice = cli(*extend, "--for", "30m", "--reason", "more", who="member01")
    assert (twice.code, "already open" in twice.err) == (1, True)

    extension = json.loads(cli("request", "list", "--mine", "--json", who="member01").out)[0]
    assert extension["extends_grant_id"] == grant_id
    shown = cli("request", "show", str(extension["id"]), who="leader01")
    assert f"grant #{grant_id}" in shown.out
    approved = cli("request", "approve", str(extension["id"]), who="leader01")
    assert (approved.code, "succeeded" in approved.out) == (0, True)
    grant = json.loads(cli("grant", "list", "--json", who="member01").out)[0]
    assert grant["end_at"].startswith("2026-11-29T12:00:00")

    clock.advance(timedelta(hours=2, minutes=30))  # past the old end, before the new one
    assert not core.sweeper.run_due().expired  # nothing is due at the old end
    assert core.provider.members("ProdMemberWorkGroup") == frozenset({"member01"})
    login(cli, core, server, "member01")  # the first login's hour is over
    still = cli("can", "member01", "assume", "prod/Prod_MemberRole", who="member01")
    assert (still.code, "ALLOWED" in still.out) == (0, True)


def test_login_saves_a_private_token_and_can_print_env(
    cli: Run, core: Core, server: str, tmp_path: Path
) -> None:
    login(cli, core, server, "member01")
    saved = tmp_path / "home" / "member01" / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert json.loads(saved.read_text())["token"].startswith("sks_")

    password, secret = enroll(core, "member02")
    printed = cli(
        "--server",
        server,
        "login",
        "--user",
        "member02",
        "--password-stdin",
        "--otp",
        code_for(core, secret),
        "--print-env",
        who="member02",
        stdin=password,
    )
    assert printed.code == 0
    assert printed.out.startswith("export SEKISHO_TOKEN=sks_")
    assert not (tmp_path / "home" / "member02" / "credentials.json").exists()

    who = cli("whoami", "--json", who="member01")
    assert json.loads(who.out)["groups"] == ["MemberGroup"]


def test_refusals_exit_1_with_the_reason(cli: Run, core: Core, server: str) -> None:
    password, secret = enroll(core, "member01")
    wrong = cli(
        "--server",
        server,
        "login",
        "--user",
        "member01",
        "--password-stdin",
        "--otp",
        code_for(core, secret),
        who="member01",
        stdin="wrong\n",
    )
    assert wrong.code == 1
    assert "wrong user, password or code" in wrong.err
    assert password not in wrong.err + wrong.out

    not_logged_in = cli("whoami", who="member01")
    assert not_logged_in.code == 1
    assert "log in" in not_logged_in.err

    login(cli, core, server, "member01", steps=1)
    past = cli(*CREATE, "--until", "2020-01-01T00:00Z", who="member01")
    assert past.code == 1
    assert "until" in past.err
    assert "in_future" in past.err

    bad_info = cli(*CREATE, "--for", "1h", "--info", "no-equals-sign", who="member01")
    assert bad_info.code == 1
    assert "KEY=TEXT" in bad_info.err


def test_usage_errors_exit_2(cli: Run, server: str) -> None:
    assert cli("request", "create", "--group", "X", who="x", server=server).code == 2
    assert cli("can", "member01", "fly", "x", who="x", server=server).code == 2
    assert cli("request", "show", "not-a-number", who="x", server=server).code == 2
    assert cli("no-such-command").code == 2


def test_unreachable_server_is_a_clear_error(cli: Run) -> None:
    result = cli(
        "--server",
        "http://127.0.0.1:9",
        "login",
        "--user",
        "x",
        "--otp",
        "123456",
        "--password-stdin",
        who="x",
        stdin="pw\n",
    )
    assert result.code == 1
    assert "cannot reach sekisho at http://127.0.0.1:9" in result.err


def test_model_check_points_at_the_line(cli: Run, tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text(
        "version: 1\n"
        "users:\n"
        "  - name: ann\n"
        "groups:\n"
        "  - name: Work\n"
        "    kind: work\n"
        "    members: [ann]\n"
    )
    result = cli("model", "check", str(model))
    assert result.code == 1
    assert f"{model}:7: work_group_members" in result.err

    good = cli("model", "check", "examples/jump-account.yaml")
    assert good.code == 0
    assert "ok" in good.out
    shown = cli("model", "show", "examples/jump-account.yaml", "--json")
    assert shown.code == 0
    assert "prod/Prod_MemberRole" in shown.out


def test_server_side_commands_on_the_configured_database(
    cli: Run, db_url: str, tmp_path: Path, monkeypatch: object
) -> None:
    env = {"SEKISHO_DATABASE_URL": db_url, "SEKISHO_DATA_DIR": str(tmp_path / "data")}
    for key, value in env.items():
        os.environ[key] = value  # restored below: monkeypatch is the cli fixture's
    try:
        init = cli("init", "--model", "examples/jump-account.yaml")
        assert init.code == 0, init.err
        assert "loaded" in init.out

        again = cli("init", "--model", "examples/jump-account.yaml")
        assert "unchanged" in again.out

        enrolled = cli("user", "enroll", "member01", "--json")
        data = json.loads(enrolled.out)
        assert set(data) == {"user", "password", "totp_secret", "otpauth_uri"}
        assert data["otpauth_uri"].startswith("otpauth://totp/sekisho:member01")

        unknown = cli("user", "enroll", "ghost")
        assert unknown.code == 1
        assert "not in the model" in unknown.err

        swept = cli("sweep", "--json")
        assert swept.code == 0
        assert json.loads(swept.out)["expired"] == []

        scim = cli("scim", "token", "okta")
        assert scim.code == 0, scim.err
        assert "SCIM base URL: " in scim.out
        assert "/scim/v2" in scim.out
        assert "bearer token:  sks_scim_" in scim.out
        refused = cli("scim", "token", "Okta Prod")
        assert refused.code == 1
        assert "lowercase letters, digits and dashes" in refused.err
    finally:
        for key in env:
            os.environ.pop(key, None)


def test_forward_without_a_grant_is_refused_with_the_way_in(
    cli: Run, core: Core, server: str
) -> None:
    login(cli, core, server, "member01")
    refused = cli("forward", "prod-admin-console", who="member01")
    # The gateway is not running in this test server: the CLI says so, clearly.
    assert refused.code == 1
    assert "gateway" in refused.err


def test_ca_export_prints_the_gateway_ca(cli: Run, tmp_path: Path) -> None:
    from sekisho.gateway.pki import ensure_ca

    os.environ["SEKISHO_DATA_DIR"] = str(tmp_path / "data")
    try:
        none_yet = cli("ca", "export")  # no server ever ran here: nothing to export
        assert none_yet.code == 1
        assert "no sekisho CA yet" in none_yet.err
        assert not (tmp_path / "data").exists()
        ensure_ca(tmp_path / "data")  # a CA as a server made it
        first = cli("ca", "export")
        assert first.code == 0
        assert first.out.startswith("-----BEGIN CERTIFICATE-----")
        assert cli("ca", "export").out == first.out  # the same CA every time
        target = tmp_path / "ca.pem"
        assert cli("ca", "export", "--out", str(target)).code == 0
        assert target.read_text() == first.out
    finally:
        os.environ.pop("SEKISHO_DATA_DIR", None)
